"""Persisted keyframe search: top-k rows for a text embedding (CLIP text tower, computed by
the caller) or an example image embedding.

Text queries sit far from image embeddings (the CLIP modality gap), so the nearest IVF lists
are a weaker guide than for image-to-image search: searches probe many more lists than the
near-duplicate join does. The index may be the near-duplicate one (`NearDuplicateIndex.index`,
same rows and ids): one copy of the vectors on disk instead of two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from enrich_assets.store.vector_index import IndexParams, KeyframeIndex, has_saved_index

SEARCH_NPROBE = 32
STEM = "search"  # file names: search.npz (the manifest), search.base-*.faiss, ...


def extend_search_index(
    index: KeyframeIndex | None,
    embeddings: np.ndarray,
    ids: np.ndarray,
    params: IndexParams | None = None,
) -> KeyframeIndex:
    """Add (n, d) keyframe embeddings under new int64 catalog row ids; None starts a new
    index. Re-running an episode: `index.remove` its old ids first."""
    if len(embeddings) != len(ids):
        raise ValueError(f"search index: {len(embeddings)} embeddings but {len(ids)} ids")
    index = index or KeyframeIndex(params or IndexParams())
    index.add(embeddings, ids)
    return index


def search(
    index: KeyframeIndex, queries: np.ndarray, k: int = 10, nprobe: int = SEARCH_NPROBE
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, cosine scores), each (queries, k), best first; missing hits are id -1, score
    -inf. One query may be a 1-D vector."""
    queries = np.atleast_2d(queries)
    if index.base is None:
        raise ValueError("search: the index holds no rows")
    if queries.shape[1] != index.base.d:
        raise ValueError(f"search: query width {queries.shape[1]} != index width {index.base.d}")
    return index.search(queries, k, nprobe)


def save_search_index(index: KeyframeIndex, directory: Path, **meta: np.ndarray) -> None:
    """Index files, then a manifest naming them with `meta` (see `KeyframeIndex.save`)."""
    index.save(directory, STEM, **meta)


def load_search_index(directory: Path) -> tuple[KeyframeIndex, dict[str, np.ndarray]]:
    """The saved index (an IVF base memory-mapped, cheap at any size) and its `meta`."""
    return KeyframeIndex.load(directory, STEM)


def has_search_index(directory: Path) -> bool:
    return has_saved_index(directory, STEM)
