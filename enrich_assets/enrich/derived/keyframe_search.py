"""Keyframe search over the persisted index of ai_search_index: hits with their keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from enrich_assets.enrich.derived.index_plan import KEYS, saved_rows
from enrich_assets.enrich.derived.search_index import has_search_index, load_search_index, search
from enrich_assets.store.catalog import Catalog


def index_dir(data_dir: Path, dataset_id: str) -> Path:
    """The dataset's search index folder (one documented place under data/)."""
    return data_dir / "index" / dataset_id


def has_index(data_dir: Path, dataset_id: str) -> bool:
    return has_search_index(index_dir(data_dir, dataset_id))


def search_keyframes(
    catalog: Catalog, data_dir: Path, dataset_id: str, query: np.ndarray, k: int
) -> pl.DataFrame:
    """Top-k keyframes for one query embedding, best first: keys, timestamp, image, score,
    and the caption when an ai_caption table exists.

    Ids are mapped to keyframes by the keys saved with the index (the same manifest), so a
    search never mixes one run's index with another run's keys."""
    index, manifest = load_search_index(index_dir(data_dir, dataset_id))
    ids, scores = search(index, query, k)
    hits = pl.DataFrame(
        {"ai_search_id": ids[0], "score": scores[0], "rank": np.arange(len(ids[0]))}
    )
    keyframes = catalog.read("keyframes", dataset_id).select(
        *KEYS, "tech_timestamp", "tech_image_path"
    )
    rows = saved_rows(manifest).rename({"id": "ai_search_id"})
    out = hits.join(rows, on="ai_search_id").join(keyframes, on=KEYS, how="left")
    captions = catalog.read("ai_caption", dataset_id)
    if "ai_caption" in captions.columns:
        out = out.join(captions.select(*KEYS, "ai_caption"), on=KEYS, how="left")
    return out.sort("rank").drop("rank")
