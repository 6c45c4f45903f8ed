"""Cosine-similarity index over keyframe embeddings, shared by near-duplicates and search.

Exact (flat inner product) below `exact_below` rows, where brute force is fast and needs no
training; IVF above, trained once on a sample and then extended without retraining. Rows
carry caller-given int64 ids (catalog row ids), so results name rows, not positions.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

CHUNK = 50_000  # rows normalised / searched at a time: bounds the extra memory to ~150 MB


@dataclass(frozen=True)
class IndexParams:
    exact_below: int = 50_000  # rows; below this a flat index is exact and fast enough
    nprobe: int = 4  # IVF lists searched per query; see docs/benchmarks/derived.md
    train_per_list: int = 40  # training rows per IVF list (faiss warns below 39)
    seed: int = 0


def unit_rows(x: np.ndarray, what: str = "embeddings") -> np.ndarray:
    """Float32 C-contiguous copy with unit-length rows; bad rows are a clear error."""
    if x.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array, got shape {x.shape}")
    x = np.array(x, dtype=np.float32, order="C")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    bad = np.flatnonzero(~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0))
    if bad.size:
        raise ValueError(f"{what}: rows {bad[:5].tolist()} are zero or not finite")
    x /= norms
    return x


def chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def nlist_for(n: int) -> int:
    """IVF list count ~4*sqrt(n): lists of a few hundred rows, a cheap coarse quantizer."""
    return max(16, int(4 * math.sqrt(n)))


def is_exact(index: faiss.Index) -> bool:
    return not isinstance(faiss.downcast_index(index), faiss.IndexIVF)


def new_index(sample: np.ndarray, n_expected: int, params: IndexParams) -> faiss.Index:
    """Empty index for about `n_expected` rows; an IVF one is trained on `sample` (unit rows)."""
    d = sample.shape[1]
    if n_expected < params.exact_below:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    nlist = nlist_for(n_expected)
    rng = np.random.default_rng(params.seed)
    take = min(len(sample), nlist * params.train_per_list)
    train = sample[np.sort(rng.choice(len(sample), take, replace=False))]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(unit_rows(train))
    index.nprobe = params.nprobe
    return index


def add_rows(index: faiss.Index, x: np.ndarray, ids: np.ndarray) -> None:
    """Add `x` (any float rows; normalised here chunk by chunk) under `ids`."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    for part in chunks(len(x)):
        index.add_with_ids(unit_rows(x[part]), ids[part])


def extend_index(
    index: faiss.Index | None, x: np.ndarray, ids: np.ndarray, params: IndexParams
) -> faiss.Index:
    """Add rows (to a new index when `index` is None); returns the index that holds them.

    An exact index that outgrows `params.exact_below` is rebuilt once as IVF, trained on
    everything it held plus the new rows; after that, rows are only added.
    """
    total = len(ids) + (0 if index is None else index.ntotal)
    if index is None:
        index = new_index(x, total, params)
    elif is_exact(index) and total >= params.exact_below:
        flat = faiss.downcast_index(index.index)
        old_x, old_ids = flat.reconstruct_n(0, flat.ntotal), faiss.vector_to_array(index.id_map)
        index = new_index(np.concatenate([old_x, np.asarray(x, np.float32)]), total, params)
        add_rows(index, old_x, old_ids)
    add_rows(index, x, ids)
    return index


def range_search(
    index: faiss.Index, x: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (query position, row id, cosine) with cosine > threshold; never an n-by-n matrix."""
    queries, hits, sims = [], [], []
    for part in chunks(len(x)):
        lims, dist, ids = index.range_search(unit_rows(x[part]), threshold)
        queries.append(np.repeat(np.arange(part.start, part.stop), np.diff(lims).astype(np.int64)))
        hits.append(ids)
        sims.append(dist)
    return np.concatenate(queries), np.concatenate(hits), np.concatenate(sims)


def knn_search(index: faiss.Index, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (row ids, cosines) per query, best first; missing hits are id -1, score -inf."""
    scores, ids = index.search(unit_rows(x, "queries"), k)
    scores[ids < 0] = -np.inf
    return ids, scores


def write_index(index: faiss.Index, path: Path) -> None:
    """faiss.write_index to a temporary file, then rename: readers never see half an index."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".faiss")
    os.close(fd)
    try:
        faiss.write_index(index, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_index(path: Path) -> faiss.Index:
    if not path.exists():
        raise FileNotFoundError(f"vector index {path} does not exist")
    return faiss.read_index(str(path))


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
