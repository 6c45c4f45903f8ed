"""Persisted keyframe search: top-k rows for a text embedding (CLIP text tower, computed by
the caller) or an example image embedding.

Text queries sit far from image embeddings (the CLIP modality gap), so the nearest IVF lists
are a weaker guide than for image-to-image search: the search index probes more lists than
the near-duplicate one.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from enrich_assets.enrich.vector_index import (
    IndexParams,
    extend_index,
    knn_search,
    read_index,
    write_index,
)

SEARCH_PARAMS = IndexParams(nprobe=32)
INDEX_FILE = "search.faiss"


def extend_search_index(
    index: faiss.Index | None,
    embeddings: np.ndarray,
    ids: np.ndarray,
    params: IndexParams = SEARCH_PARAMS,
) -> faiss.Index:
    """Add (n, d) keyframe embeddings under int64 catalog row ids; None starts a new index.

    Ids already present are replaced, so re-running an episode leaves one copy of each row.
    """
    if len(embeddings) != len(ids):
        raise ValueError(f"search index: {len(embeddings)} embeddings but {len(ids)} ids")
    if index is not None:
        index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, np.int64)))
    return extend_index(index, embeddings, ids, params)[0]


def search(index: faiss.Index, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(ids, cosine scores), each (queries, k), best first; one query may be a 1-D vector."""
    queries = np.atleast_2d(queries)
    if queries.shape[1] != index.d:
        raise ValueError(f"search: query width {queries.shape[1]} != index width {index.d}")
    return knn_search(index, queries, k)


def save_search_index(index: faiss.Index, directory: Path) -> Path:
    path = directory / INDEX_FILE
    write_index(index, path)
    return path


def load_search_index(directory: Path) -> faiss.Index:
    return read_index(directory / INDEX_FILE)
