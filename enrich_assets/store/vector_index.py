"""Cosine-similarity index over keyframe embeddings, shared by near-duplicates and search.

Exact (flat inner product) below `exact_below` rows, where brute force is fast and needs no
training; IVF above, trained once on a sample and then extended without retraining. Rows
carry caller-given int64 ids (catalog row ids), so results name rows, not positions.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from enrich_assets.infra.files import atomic_write

CHUNK = 50_000  # rows normalised / searched at a time: bounds the extra memory to ~150 MB
JOIN_CHUNK = 200_000  # query rows per IVF join pass: larger passes, larger (faster) GEMMs
JOIN_BLOCK = 4096  # query rows per GEMM against one list: bounds a block to ~100 MB


@dataclass(frozen=True)
class IndexParams:
    exact_below: int = 20_000  # rows; below this a flat index is exact and fast enough
    nprobe: int = 2  # IVF lists searched per query; see docs/benchmarks/derived.md
    train_per_list: int = 50  # training rows per IVF list (faiss warns below 39)
    lists_per_sqrt_n: float = 3.0  # nlist = this * sqrt(rows expected)
    compact_fraction: float = 0.25  # merge the delta into the base past this share of it
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


def nlist_for(n: int, per_sqrt_n: float) -> int:
    """IVF list count ~c*sqrt(n): balances the coarse assignment (n * nlist) against the
    list joins (n * nprobe * n / nlist)."""
    return max(16, int(per_sqrt_n * math.sqrt(n)))


def is_exact(index: faiss.Index) -> bool:
    return not isinstance(faiss.downcast_index(index), faiss.IndexIVF)


def new_index(sample: np.ndarray, n_expected: int, params: IndexParams) -> faiss.Index:
    """Empty index for about `n_expected` rows; an IVF one is trained on `sample`.

    IVF centroids come from two-level spherical k-means: a fraction of the cost of one flat
    k-means with nlist centroids, and lists about as balanced.
    """
    d = sample.shape[1]
    if n_expected < params.exact_below:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    nlist = nlist_for(n_expected, params.lists_per_sqrt_n)
    rng = np.random.default_rng(params.seed)
    take = min(len(sample), nlist * params.train_per_list)
    train = unit_rows(sample[np.sort(rng.choice(len(sample), take, replace=False))])
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # many small k-means: threads only wait on each other
    try:
        centroids = _two_level_centroids(train, nlist, params.seed)
    finally:
        faiss.omp_set_num_threads(threads)
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(centroids)
    index = faiss.IndexIVFFlat(quantizer, d, len(centroids), faiss.METRIC_INNER_PRODUCT)
    index.nprobe = params.nprobe
    return index


def _two_level_centroids(train: np.ndarray, nlist: int, seed: int) -> np.ndarray:
    """About `nlist` unit centroids: sqrt(nlist) coarse spherical k-means clusters, each split
    into a share of the lists proportional to its size (at least one)."""
    d = train.shape[1]
    coarse = faiss.Kmeans(d, int(math.sqrt(nlist)), niter=10, spherical=True, seed=seed)
    coarse.train(train)
    _, assigned = coarse.index.search(train, 1)
    assigned = assigned[:, 0]
    centroids = []
    for c in np.unique(assigned):
        members = train[assigned == c]
        k = max(1, min(len(members), round(nlist * len(members) / len(train))))
        fine = faiss.Kmeans(d, k, niter=10, spherical=True, seed=seed)
        fine.train(members)
        centroids.append(fine.centroids)
    return unit_rows(np.concatenate(centroids))


def add_rows(index: faiss.Index, x: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
    """Add `x` (any float rows; normalised here chunk by chunk) under `ids`.

    For IVF returns each row's `nprobe` nearest lists (the first is where it is stored), so
    a following `range_search` of the same rows need not assign them again.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if is_exact(index):
        for part in chunks(len(x)):
            index.add_with_ids(unit_rows(x[part]), ids[part])
        return None
    ivf = faiss.extract_index_ivf(index)
    probes = np.empty((len(x), ivf.nprobe), np.int64)
    for part in chunks(len(x)):
        q = unit_rows(x[part])
        _, probes[part] = ivf.quantizer.search(q, ivf.nprobe)
        primary = np.ascontiguousarray(probes[part, 0])
        ivf.add_core(len(q), faiss.swig_ptr(q), faiss.swig_ptr(ids[part]), faiss.swig_ptr(primary))
    return probes


def range_search(
    index: faiss.Index, x: np.ndarray, threshold: float, probes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (query position, row id, cosine) with cosine > threshold; never an n-by-n matrix.

    On IVF this is a join by list, not faiss's per-query scan: the queries probing a list are
    multiplied with its stored rows in one GEMM, several times faster on the same candidates.
    """
    found = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))]
    if is_exact(index):
        for part in chunks(len(x)):
            lims, sims, ids = index.range_search(unit_rows(x[part]), threshold)
            rows = np.repeat(np.arange(part.start, part.stop), np.diff(lims).astype(np.int64))
            found.append((rows, ids, sims))
    else:
        ivf = faiss.extract_index_ivf(index)
        for part in chunks(len(x), JOIN_CHUNK):
            q = unit_rows(x[part])
            probed = ivf.quantizer.search(q, ivf.nprobe)[1] if probes is None else probes[part]
            found += _join_lists(ivf, q, probed, threshold, part.start)
    rows, ids, sims = (np.concatenate(column) for column in zip(*found, strict=True))
    return rows, ids, sims


def _join_lists(
    ivf: faiss.IndexIVF, q: np.ndarray, probes: np.ndarray, threshold: float, offset: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Queries grouped by probed list, each group multiplied with that list's rows.

    The GEMMs are small (hundreds of rows), where a multi-threaded BLAS spends its time
    synchronising, the more so on a busy machine: they run single-threaded, one list per
    worker thread (numpy releases the GIL inside the product).
    """
    from threadpoolctl import threadpool_limits

    nprobe = probes.shape[1]
    flat = probes.ravel()
    order = np.argsort(flat, kind="stable")
    lists, starts = np.unique(flat[order], return_index=True)
    ends = np.append(starts[1:], len(order))

    def join(lst: int, start: int, end: int) -> list[tuple[np.ndarray, ...]]:
        size = ivf.invlists.list_size(lst) if lst >= 0 else 0
        if not size:
            return []
        codes = faiss.rev_swig_ptr(ivf.invlists.get_codes(lst), size * ivf.code_size)
        members = codes.view(np.float32).reshape(size, ivf.d)
        member_ids = faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), size)
        found = []
        for block in chunks(end - start, JOIN_BLOCK):
            rows = order[start + block.start : start + block.stop] // nprobe
            sims = q[rows] @ members.T
            r, c = np.nonzero(sims > threshold)
            found.append((rows[r] + offset, member_ids[c].copy(), sims[r, c]))
        return found

    with threadpool_limits(1, "blas"), ThreadPoolExecutor(os.cpu_count()) as pool:
        parts = pool.map(join, lists.tolist(), starts.tolist(), ends.tolist())
        return [found for part in parts for found in part]


def knn_search(index: faiss.Index, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (row ids, cosines) per query, best first; missing hits are id -1, score -inf."""
    scores, ids = index.search(unit_rows(x, "queries"), k)
    scores[ids < 0] = -np.inf
    return ids, scores


@dataclass
class KeyframeIndex:
    """Keyframe embeddings under int64 ids: a base index plus a delta of rows added since the
    base was last saved.

    A saved IVF base is memory-mapped read-only on load, and later rows go to a small delta
    sharing its lists, so a run that adds 1 % of the rows reads and writes about 1 % of the
    bytes. Once the delta passes `compact_fraction` of the base, both are merged into a new
    base (in memory, written whole on the next save). Exact (small) indexes are simply
    loaded, extended and written whole.
    """

    params: IndexParams = field(default_factory=IndexParams)
    base: faiss.Index | None = None
    delta: faiss.Index | None = None
    base_file: str = ""  # the saved file `base` was loaded from, unchanged since; "" if changed

    @property
    def ntotal(self) -> int:
        return sum(i.ntotal for i in (self.base, self.delta) if i is not None)

    def add(self, x: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
        """Add rows; returns their IVF probes (see `add_rows`), None while exact."""
        total = self.ntotal + len(ids)
        if self.base is None:
            self.base = new_index(x, total, self.params)
        elif is_exact(self.base) and total >= self.params.exact_below:
            flat = faiss.downcast_index(self.base.index)
            old_x, old_ids = (
                flat.reconstruct_n(0, flat.ntotal),
                faiss.vector_to_array(self.base.id_map),
            )
            self.base = new_index(
                np.concatenate([old_x, np.asarray(x, np.float32)]), total, self.params
            )
            add_rows(self.base, old_x, old_ids)
            self.base_file = ""
        if is_exact(self.base) or not self.base_file:
            self.base_file = ""
            return add_rows(self.base, x, ids)
        if self.delta is None:
            self.delta = _empty_like(self.base)
        probes = add_rows(self.delta, x, ids)
        if self.delta.ntotal > self.params.compact_fraction * self.base.ntotal:
            self._compact()
        return probes

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows by id; a memory-mapped base is first copied into memory (re-runs only)."""
        if not len(ids):
            return
        selector = faiss.IDSelectorBatch(np.asarray(ids, np.int64))
        if self.base_file and not is_exact(self.base):
            self._compact()
        self.base_file = ""
        for index in (self.base, self.delta):
            if index is not None:
                index.remove_ids(selector)

    def _compact(self) -> None:
        merged = _empty_like(self.base)
        for index in (self.base, self.delta):
            if index is not None:
                _copy_lists(faiss.extract_index_ivf(index), merged)
        self.base, self.delta, self.base_file = merged, None, ""

    def range_search(
        self, x: np.ndarray, threshold: float, probes: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        indexes = [i for i in (self.base, self.delta) if i is not None]
        found = [range_search(i, x, threshold, probes) for i in indexes]
        rows, ids, sims = (np.concatenate(column) for column in zip(*found, strict=True))
        return rows, ids, sims

    def search(self, x: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, cosines) over base and delta, best first."""
        parts = []
        for index in (self.base, self.delta):
            if index is not None:
                if not is_exact(index):
                    faiss.extract_index_ivf(index).nprobe = nprobe
                parts.append(knn_search(index, x, k))
        ids = np.concatenate([p[0] for p in parts], axis=1)
        scores = np.concatenate([p[1] for p in parts], axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(ids, best, 1), np.take_along_axis(scores, best, 1)

    def save(self, directory: Path, stem: str, **meta: np.ndarray) -> None:
        """Write what changed under new file names, then the manifest `<stem>.npz` naming
        them, plus the caller's `meta` arrays.

        The manifest is written last and renamed into place, so a reader or a crash sees the
        previous set of files or the new one, never a mix. Files that neither the previous
        nor the new manifest names are removed; a reader that opened the previous manifest
        finds its files until the save after this one. One writer at a time (callers lock).
        """
        if self.base is None:
            raise ValueError(f"{directory / stem}: nothing to save, the index holds no rows")
        manifest = directory / f"{stem}.npz"
        keep = _manifest_files(manifest)
        for path in directory.glob(f"{stem}.*.faiss"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
        if not self.base_file:
            self.base_file = _write_new(self.base, directory, f"{stem}.base")
        delta_file = ""
        if self.delta is not None:
            delta_file = _write_new(self.delta, directory, f"{stem}.delta")
        write_npz(
            manifest,
            params=np.array(json.dumps(asdict(self.params))),
            base_file=np.array(self.base_file),
            delta_file=np.array(delta_file),
            **meta,
        )

    @classmethod
    def load(cls, directory: Path, stem: str) -> tuple[KeyframeIndex, dict[str, np.ndarray]]:
        """The index a manifest names (an IVF base memory-mapped) and the manifest's `meta`."""
        meta = dict(np.load(directory / f"{stem}.npz"))
        params = IndexParams(**json.loads(str(meta.pop("params"))))
        base_file, delta_file = str(meta.pop("base_file")), str(meta.pop("delta_file"))
        base = read_index(directory / base_file, mmap=True)
        if is_exact(base):
            base = read_index(directory / base_file)  # small; extended in place
        delta = read_index(directory / delta_file) if delta_file else None
        return cls(params, base, delta, base_file), meta


def has_saved_index(directory: Path, stem: str) -> bool:
    return (directory / f"{stem}.npz").is_file()


def _manifest_files(manifest: Path) -> set[str]:
    """The index files a manifest names (none when there is no manifest yet)."""
    if not manifest.is_file():
        return set()
    meta = np.load(manifest)
    return {str(meta["base_file"]), str(meta["delta_file"])} - {""}


def _write_new(index: faiss.Index, directory: Path, prefix: str) -> str:
    """Write `index` under a name never used before; returns the name."""
    name = f"{prefix}-{secrets.token_hex(6)}.faiss"
    write_index(index, directory / name)
    return name


def _empty_like(index: faiss.Index) -> faiss.IndexIVFFlat:
    """An empty IVF index with the same lists (a copy of the quantizer) and nprobe."""
    ivf = faiss.extract_index_ivf(index)
    quantizer = faiss.IndexFlatIP(ivf.d)
    quantizer.add(ivf.quantizer.reconstruct_n(0, ivf.nlist))
    empty = faiss.IndexIVFFlat(quantizer, ivf.d, ivf.nlist, faiss.METRIC_INNER_PRODUCT)
    empty.nprobe = ivf.nprobe
    return empty


def _copy_lists(source: faiss.IndexIVF, target: faiss.IndexIVF) -> None:
    """Append every list of `source` to `target` (source may be read-only)."""
    for lst in range(source.nlist):
        size = source.invlists.list_size(lst)
        if size:
            ids, codes = source.invlists.get_ids(lst), source.invlists.get_codes(lst)
            target.invlists.add_entries(lst, size, ids, codes)
    target.ntotal += source.ntotal


def write_index(index: faiss.Index, path: Path) -> None:
    """faiss.write_index to a temporary file, then rename: readers never see half an index."""
    atomic_write(path, lambda tmp: faiss.write_index(index, tmp))


def read_index(path: Path, mmap: bool = False) -> faiss.Index:
    """mmap: IVF lists stay on disk, read-only, paged in as searched."""
    if not path.exists():
        raise FileNotFoundError(f"vector index {path} does not exist")
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mmap else 0)


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file, then rename."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays)

    atomic_write(path, write)
