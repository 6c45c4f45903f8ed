"""Near-duplicate keyframes on small data with planted duplicates, checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from enrich_assets.enrich.derived.near_duplicates import (
    NearDuplicateIndex,
    episode_duplicates,
    keyframe_duplicates,
)
from enrich_assets.store.vector_index import IndexParams, is_exact

EP_LEN = 40


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def planted(n_episodes: int = 5, d: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random keyframes (cosine ~0 to each other) plus planted near-copies (cosine ~0.99):
    row 45 copies row 3 and row 46 copies row 45 (a chain across episodes 0 and 1);
    episode 4 copies 30 of episode 2's 40 keyframes; episode 3 copies 10 of episode 1's."""
    rng = np.random.default_rng(seed)
    x = _unit(rng.standard_normal((n_episodes * EP_LEN, d)))

    def near(row: np.ndarray) -> np.ndarray:
        return _unit(row + rng.standard_normal(d) * 0.1 / np.sqrt(d))

    x[45] = near(x[3])
    x[46] = near(x[45])
    for i in range(30):
        x[4 * EP_LEN + i] = near(x[2 * EP_LEN + i])
    for i in range(10):
        x[3 * EP_LEN + i] = near(x[1 * EP_LEN + 20 + i])
    return x, np.repeat(np.arange(n_episodes), EP_LEN)


def brute_force_pairs(x: np.ndarray, threshold: float = 0.95) -> set[tuple[int, int]]:
    a, b = np.nonzero(np.triu(x @ x.T, k=1) > threshold)
    return set(zip(a.tolist(), b.tolist(), strict=True))


def build(x: np.ndarray, episodes: np.ndarray) -> NearDuplicateIndex:
    nd = NearDuplicateIndex()
    rows = np.arange(len(x))
    nd.add(x, rows, episodes, rows)
    return nd


def as_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, pairs.tolist()))


def test_planted_duplicates_found_and_nothing_else():
    x, episodes = planted()
    nd = build(x, episodes)
    expected = {(3, 45), (45, 46), (3, 46)}  # the chain is close enough to close a triangle
    expected |= {(2 * EP_LEN + i, 4 * EP_LEN + i) for i in range(30)}
    expected |= {(EP_LEN + 20 + i, 3 * EP_LEN + i) for i in range(10)}
    assert brute_force_pairs(x) == expected
    assert as_set(nd.pairs) == expected
    assert (nd.sims > 0.95).all()


def test_groups_point_at_the_earliest_member():
    x, episodes = planted()
    kf = keyframe_duplicates(build(x, episodes))
    assert kf.dup_of[45] == 3 and kf.dup_of[46] == 3
    assert kf.dup_of[3] == -1 and kf.group[3] == 3 == kf.group[46]
    assert kf.dup_of[4 * EP_LEN + 7] == 2 * EP_LEN + 7
    singles = np.setdiff1d(np.arange(len(x)), np.array(sorted(brute_force_pairs(x))).ravel())
    assert (kf.group[singles] == -1).all() and (kf.dup_of[singles] == -1).all()


def test_order_key_decides_which_member_is_earliest():
    x, episodes = planted()
    nd = NearDuplicateIndex()
    rows = np.arange(len(x))
    nd.add(x, rows, episodes, order=len(x) - rows)  # reversed time
    kf = keyframe_duplicates(nd)
    assert kf.dup_of[3] == 46 and kf.dup_of[46] == -1


def test_episode_mostly_copying_an_earlier_one_is_flagged():
    x, episodes = planted()
    ep = episode_duplicates(build(x, episodes))
    assert ep.episodes.tolist() == [0, 1, 2, 3, 4]
    assert ep.fraction[4] == pytest.approx(0.75) and ep.dup_of[4] == 2
    assert ep.fraction[2] == pytest.approx(0.75) and ep.dup_of[2] == -1  # the original
    assert ep.fraction[3] == pytest.approx(0.25) and ep.dup_of[3] == -1  # a minority
    assert ep.dup_of[0] == -1 and ep.fraction[0] == pytest.approx(1 / EP_LEN)


def test_incremental_add_equals_full_recompute(tmp_path):
    x, episodes = planted()
    full = build(x, episodes)
    split = 3 * EP_LEN
    rows = np.arange(len(x))
    inc = NearDuplicateIndex()
    inc.add(x[:split], rows[:split], episodes[:split], rows[:split])
    inc.save(tmp_path, note=np.array("kept"))
    inc, meta = NearDuplicateIndex.load(tmp_path)
    assert str(meta["note"]) == "kept"
    new_pairs = inc.add(x[split:], rows[split:], episodes[split:], rows[split:])
    assert as_set(new_pairs) == {p for p in as_set(full.pairs) if p[1] >= split}
    assert as_set(inc.pairs) == as_set(full.pairs)
    np.testing.assert_array_equal(keyframe_duplicates(inc).dup_of, keyframe_duplicates(full).dup_of)


def test_removing_and_readding_an_episode_is_idempotent():
    x, episodes = planted()
    nd = build(x, episodes)
    before = as_set(nd.pairs)
    nd.remove(np.flatnonzero(episodes == 4))
    assert not any(p[1] >= 4 * EP_LEN for p in as_set(nd.pairs))
    rows = np.arange(4 * EP_LEN, 5 * EP_LEN)
    nd.add(x[rows], rows, episodes[rows], rows)
    assert as_set(nd.pairs) == before and nd.index.ntotal == len(x)
    with pytest.raises(ValueError, match="already indexed"):
        nd.add(x[rows], rows, episodes[rows], rows)


def test_growing_past_the_exact_limit_switches_to_ivf_and_keeps_recall():
    x, episodes = planted(n_episodes=50, d=32, seed=1)
    params = IndexParams(exact_below=1000)
    rows = np.arange(len(x))
    nd = NearDuplicateIndex(params=params)
    nd.add(x[:800], rows[:800], episodes[:800], rows[:800])
    assert is_exact(nd.index.base)
    nd.add(x[800:], rows[800:], episodes[800:], rows[800:])
    assert not is_exact(nd.index.base) and nd.index.ntotal == len(x)
    expected, found = brute_force_pairs(x), as_set(nd.pairs)
    assert found <= expected
    assert len(found) >= 0.95 * len(expected)


def test_bad_rows_are_named():
    x, episodes = planted()
    x[7] = 0
    with pytest.raises(ValueError, match=r"rows \[7\]"):
        build(x, episodes)


def _files(directory) -> dict[str, int]:
    """Index file name -> inode: a rewritten file gets a new name, never new bytes in place."""
    return {p.name: p.stat().st_ino for p in directory.glob("near_duplicates.*.faiss")}


def _named(directory) -> set[str]:
    manifest = np.load(directory / "near_duplicates.npz")
    return {str(manifest["base_file"]), str(manifest["delta_file"])} - {""}


def test_saved_ivf_index_grows_by_a_delta_then_compacts(tmp_path):
    """Base memory-mapped after load and never rewritten while new rows go to a delta file,
    merged past the fraction; every save names its files in a manifest written last."""
    x, episodes = planted(n_episodes=50, d=32, seed=2)
    rows = np.arange(len(x))
    params = IndexParams(exact_below=1000, compact_fraction=0.25)
    full = NearDuplicateIndex(params=params)
    full.add(x, rows, episodes, rows)

    nd = NearDuplicateIndex(params=params)
    nd.add(x[:1600], rows[:1600], episodes[:1600], rows[:1600])
    nd.save(tmp_path)
    (base,) = _files(tmp_path)
    base_inode = _files(tmp_path)[base]
    previous = _named(tmp_path)
    for start in (1600, 1800):  # two runs of 200 rows: 12.5 % then 25 % of the base
        nd, _ = NearDuplicateIndex.load(tmp_path)
        part = slice(start, start + 200)
        nd.add(x[part], rows[part], episodes[part], rows[part])
        assert nd.index.delta is not None and nd.index.base_file == base
        nd.save(tmp_path)
        named = _named(tmp_path)
        assert base in named and _files(tmp_path)[base] == base_inode  # untouched
        assert set(_files(tmp_path)) == named | previous  # the previous set stays readable
        previous = named
    nd, _ = NearDuplicateIndex.load(tmp_path)
    assert nd.index.ntotal == len(x) and nd.index.delta.ntotal == 400
    assert nd.index.params == params
    assert as_set(nd.pairs) == as_set(full.pairs)

    nd.add(x[:1] * -1, np.array([10**6]), np.array([99]), np.array([10**6]))  # 401 > 400
    assert nd.index.delta is None and nd.index.base.ntotal == len(x) + 1
    nd.save(tmp_path)
    (new_base,) = _named(tmp_path)
    assert new_base != base and not list(tmp_path.glob(".tmp-*"))
    nd, _ = NearDuplicateIndex.load(tmp_path)
    nd.remove(rows[episodes == 4].tolist() + [10**6])  # a memory-mapped base is copied, trimmed
    assert nd.index.ntotal == len(x) - EP_LEN
    assert not any(p[1] >= 4 * EP_LEN and p[1] < 5 * EP_LEN for p in as_set(nd.pairs))
