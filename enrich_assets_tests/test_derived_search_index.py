"""Keyframe search returns the planted nearest row, exact and IVF, after a save and load."""

from __future__ import annotations

import numpy as np
import pytest

from enrich_assets.enrich.derived.search_index import (
    extend_search_index,
    load_search_index,
    save_search_index,
    search,
)
from enrich_assets.store.vector_index import IndexParams, is_exact


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("exact_below", [50_000, 1_000], ids=["exact", "ivf"])
def test_query_finds_the_planted_nearest_row(tmp_path, exact_below):
    rng = np.random.default_rng(0)
    x = _unit(rng.standard_normal((3000, 48)))
    ids = 10_000 + np.arange(3000)
    params = IndexParams(exact_below=exact_below, nprobe=16)
    index = extend_search_index(None, x, ids, params)
    assert is_exact(index.base) == (exact_below > 3000)
    save_search_index(index, tmp_path)
    index, _ = load_search_index(tmp_path)
    targets = [5, 1234, 2999]
    queries = _unit(x[targets] + rng.standard_normal((3, 48)) * 0.02)
    found, scores = search(index, queries, k=5)
    assert found[:, 0].tolist() == [10_005, 11_234, 12_999]
    assert (scores[:, 0] > 0.9).all() and (np.diff(scores, axis=1) <= 0).all()
    one, _ = search(index, queries[0], k=1)  # a single 1-D query vector
    assert one.tolist() == [[10_005]]


def test_rerun_rows_are_replaced_and_short_indexes_pad():
    rng = np.random.default_rng(1)
    x = _unit(rng.standard_normal((4, 8)))
    index = extend_search_index(None, x, np.arange(4))
    index.remove(np.arange(2))  # episode re-run, new embeddings
    index = extend_search_index(index, -x[:2], np.arange(2))
    assert index.ntotal == 4
    found, scores = search(index, -x[0], k=6)
    assert found[0, 0] == 0 and scores[0, 0] == pytest.approx(1)
    assert found[0, 4:].tolist() == [-1, -1] and np.isneginf(scores[0, 4:]).all()
    with pytest.raises(ValueError, match="query width"):
        search(index, np.ones(9, np.float32))


def test_a_save_that_dies_before_its_manifest_leaves_the_previous_index(tmp_path, monkeypatch):
    import enrich_assets.store.vector_index as vector_index

    rng = np.random.default_rng(2)
    x = _unit(rng.standard_normal((20, 8)))
    index = extend_search_index(None, x[:10], np.arange(10))
    save_search_index(index, tmp_path, note=np.array("first"))
    index.add(x[10:], np.arange(10, 20))

    def die(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(vector_index, "write_npz", die)
    with pytest.raises(OSError, match="disk full"):
        save_search_index(index, tmp_path, note=np.array("second"))
    monkeypatch.undo()
    loaded, meta = load_search_index(tmp_path)
    assert loaded.ntotal == 10 and str(meta["note"]) == "first"
    assert search(loaded, x[3], k=1)[0].tolist() == [[3]]
