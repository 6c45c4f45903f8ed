"""Keyframe search over the persisted index of ai_search_index: hits with their keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from enrich_assets.enrich.search_index import INDEX_FILE, load_search_index, search
from enrich_assets.store.catalog import Catalog


def index_dir(data_dir: Path, dataset_id: str) -> Path:
    """The dataset's search index folder (one documented place under data/)."""
    return data_dir / "index" / dataset_id


def has_index(data_dir: Path, dataset_id: str) -> bool:
    return (index_dir(data_dir, dataset_id) / INDEX_FILE).is_file()


def search_keyframes(
    catalog: Catalog, data_dir: Path, dataset_id: str, query: np.ndarray, k: int
) -> pl.DataFrame:
    """Top-k keyframes for one query embedding, best first: keys, timestamp, image, score,
    and the caption when an ai_caption table exists."""
    ids, scores = search(load_search_index(index_dir(data_dir, dataset_id)), query, k)
    hits = pl.DataFrame(
        {"ai_search_id": ids[0], "score": scores[0], "rank": np.arange(len(ids[0]))}
    ).filter(pl.col("ai_search_id") >= 0)
    keys = ["episode_index", "camera", "frame_index"]
    rows = catalog.read("ai_search_index", dataset_id).select("ai_search_id", *keys)
    keyframes = catalog.read("keyframes", dataset_id).select(
        *keys, "tech_timestamp", "tech_image_path"
    )
    out = hits.join(rows, on="ai_search_id").join(keyframes, on=keys, how="left")
    captions = catalog.read("ai_caption", dataset_id)
    if "ai_caption" in captions.columns:
        out = out.join(captions.select(*keys, "ai_caption"), on=keys, how="left")
    return out.sort("rank").drop("rank")
