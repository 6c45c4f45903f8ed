"""Episode diversity against brute force; DTW finds a planted repeated demonstration."""

from __future__ import annotations

import numpy as np
import pytest

from enrich_assets.enrich.derived.diversity import (
    dtw_distances,
    episode_diversity,
    episode_sums,
    most_similar_episode,
    percentile,
    repeated_demonstrations,
    trajectory_features,
)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_diversity_matches_brute_force_mean_pairwise_distance():
    rng = np.random.default_rng(0)
    still = np.repeat(_unit(rng.standard_normal((1, 16))), 5, axis=0)  # one view, 5 times
    varied = _unit(rng.standard_normal((7, 16)))
    single = _unit(rng.standard_normal((1, 16)))
    x = np.concatenate([varied, still, single])
    episodes = np.array([5] * 7 + [2] * 5 + [9])
    ids, diversity = episode_diversity(x, episodes)
    sims = varied @ varied.T
    expected = 1 - sims[np.triu_indices(7, k=1)].mean()
    assert ids.tolist() == [2, 5, 9]
    assert diversity[0] == pytest.approx(0, abs=1e-5)
    assert diversity[1] == pytest.approx(expected, rel=1e-4)
    assert np.isnan(diversity[2])
    np.testing.assert_allclose(percentile(diversity)[:2], [0, 100])
    assert np.isnan(percentile(diversity)[2])


def _walk(rng: np.random.Generator, steps: int, dims: int) -> np.ndarray:
    return np.cumsum(rng.standard_normal((steps, dims)), axis=0)


def test_dtw_is_zero_for_a_sequence_and_small_for_its_slowed_copy():
    rng = np.random.default_rng(1)
    walk = _walk(rng, 200, 6)
    slowed = np.interp(np.linspace(0, 199, 260) ** 1.1 / 199**0.1, np.arange(200), walk[:, 0])
    other = _walk(rng, 200, 6)
    feats = trajectory_features([walk[:, :1], slowed[:, None], other[:, :1]])
    d = dtw_distances(feats[[0, 0]], feats[[0, 1]])
    assert d[0] == 0
    unrelated = dtw_distances(feats[[0]], feats[[2]])[0]
    assert d[1] < 0.25 * unrelated


def test_repeated_demonstration_pair_ranks_first():
    """Eight episodes in one scene (vision alike); episode 6 re-does episode 2's motion at
    another speed and length, so only the trajectory tells the pair apart."""
    rng = np.random.default_rng(2)
    walks = [_walk(rng, int(rng.integers(150, 250)), 8) for _ in range(8)]
    source = walks[2]
    t = np.linspace(0, len(source) - 1, 180) ** 1.05 / (len(source) - 1) ** 0.05
    walks[6] = np.stack([np.interp(t, np.arange(len(source)), c) for c in source.T], axis=1)
    walks[6] += rng.standard_normal(walks[6].shape) * 0.05
    scene = _unit(rng.standard_normal((1, 32)))
    vectors = _unit(scene + rng.standard_normal((8, 32)) * 0.05)
    pairs = repeated_demonstrations(vectors, trajectory_features(walks), k=3)
    assert (pairs.a[0], pairs.b[0]) == (2, 6)
    assert pairs.similarity[0] > pairs.similarity[1] + 0.05
    assert (np.diff(pairs.similarity) <= 0).all() and (pairs.a < pairs.b).all()
    partner, similarity = most_similar_episode(pairs, 8)
    assert partner[2] == 6 and partner[6] == 2 and similarity[6] == pairs.similarity[0]
    assert (partner >= 0).all() and (partner != np.arange(8)).all()


def test_episode_sums_feed_vision_similarity():
    rng = np.random.default_rng(3)
    x = _unit(rng.standard_normal((30, 8)))
    ids, sums, counts = episode_sums(x, np.repeat([4, 1, 7], 10))
    assert ids.tolist() == [1, 4, 7] and counts.tolist() == [10, 10, 10]
    np.testing.assert_allclose(sums[1], x[:10].sum(axis=0), rtol=1e-5)


def test_trajectories_of_mixed_width_are_rejected():
    with pytest.raises(ValueError, match="one width"):
        trajectory_features([np.zeros((5, 3)), np.zeros((5, 4))])
