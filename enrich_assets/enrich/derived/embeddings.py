"""The keyframe embeddings every derived asset starts from, as one matrix in key order.

Derived state (indexes, cluster models) is only valid for the embedding space it was built
in, so the embeddings' config travels with it: a change there means starting over.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from enrich_assets.enrich.derived.index_plan import KEYS
from enrich_assets.infra.schema import config_hash


def embedding_config(keys: pl.DataFrame) -> str:
    """What the dataset's embeddings are: their code_versions (model, weights, preprocessing)."""
    return config_hash(sorted(keys["code_version"].unique().to_list()))


def embedding_matrix(dataset_id: str, keys: pl.DataFrame, rows: pl.DataFrame) -> np.ndarray:
    """(n, d) float32 embeddings of these keyframes (KEYS columns), in their order, taken from
    `rows` (KEYS + ai_embedding); a keyframe without one, or widths that differ, is an error."""
    vectors = keys.select(KEYS).join(rows, on=KEYS, how="left", maintain_order="left")
    vectors = vectors["ai_embedding"]
    if vectors.null_count() or vectors.list.len().n_unique() != 1:
        raise ValueError(f"{dataset_id}: ai_embedding rows are missing or of different widths")
    return vectors.explode().to_numpy().astype(np.float32).reshape(len(keys), -1)
