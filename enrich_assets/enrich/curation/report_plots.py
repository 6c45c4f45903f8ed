"""The validation report's plots for the UI: embedding map and sizes by cluster, the quality
histogram, and the largest near-duplicate groups as thumbnails. A plot whose table is empty
is left out rather than drawn blank.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import polars as pl

from enrich_assets.enrich.curation.plots import (
    cluster_sizes_png,
    duplicate_groups_png,
    embedding_map_png,
    histogram_png,
)
from enrich_assets.enrich.curation.review_sample import KEYS

GROUPS_SHOWN = 4  # largest near-duplicate groups drawn
PER_GROUP = 4  # keyframes drawn per group


def duplicate_group_paths(
    duplicates: pl.DataFrame,
    keyframes: pl.DataFrame,
    groups: int = GROUPS_SHOWN,
    per_group: int = PER_GROUP,
) -> list[list[str]]:
    """Image paths of the largest near-duplicate groups (most members first), a few each."""
    paths = keyframes.select(*KEYS, "tech_image_path")
    grouped = duplicates.filter(pl.col("ai_dup_group") >= 0).join(paths, on=KEYS)
    largest = grouped["ai_dup_group"].value_counts(sort=True).head(groups)["ai_dup_group"]
    return [
        grouped.filter(pl.col("ai_dup_group") == g)["tech_image_path"].head(per_group).to_list()
        for g in largest
    ]


def report_plots(
    tables: Mapping[str, pl.DataFrame],
    embedding: pl.DataFrame,
    image: Callable[[str], np.ndarray],
) -> dict[str, bytes]:
    """PNG per plot name from one dataset's report tables and its ai_embedding rows;
    `image(path)` loads a keyframe image for the duplicate groups."""
    plots: dict[str, bytes] = {}
    quality = tables["tech_quality"]
    if quality.height:
        scores = quality["tech_quality_score"].to_numpy()
        plots["quality_histogram"] = histogram_png(
            scores, "keyframe quality", "tech_quality_score", value_range=(0, 1)
        )
    clusters = tables["ai_semantic_cluster"]
    if clusters.height and embedding.height:
        joined = embedding.join(clusters, on=KEYS)
        matrix = np.asarray(joined["ai_embedding"].to_list(), np.float32)
        labels = joined["ai_cluster_id"].to_numpy()
        plots["embedding_map"] = embedding_map_png(matrix, labels)
        plots["cluster_sizes"] = cluster_sizes_png(labels)
    duplicates = tables["ai_near_duplicates"]
    if duplicates.height and (duplicates["ai_dup_group"] >= 0).any():
        paths = duplicate_group_paths(duplicates, tables["keyframes"])
        plots["duplicate_groups"] = duplicate_groups_png([[image(p) for p in g] for g in paths])
    return plots
