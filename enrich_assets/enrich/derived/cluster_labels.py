"""Incremental cluster labels: each run labels only keyframes it has not labelled yet.

The stored model labels new keyframes as they come; it is refitted (a new clustering
version, relabelling every keyframe) on request, when the embedding space changed, or when
the new keyframes drift from it. Embeddings are read through `vectors` only for the rows a
run labels, so a run with nothing new reads none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from enrich_assets.enrich.derived.clusters import (
    ClusterConfig,
    ClusterModel,
    assign_clusters,
    drift,
    fit_clusters,
    needs_recluster,
)
from enrich_assets.enrich.derived.index_plan import KEYS

LABELS_SCHEMA = {
    "episode_index": pl.Int64,
    "camera": pl.String,
    "frame_index": pl.Int64,
    "ai_cluster_id": pl.Int64,
    "ai_cluster_distance": pl.Float32,
    "ai_cluster_version": pl.String,
}


@dataclass(frozen=True)
class ClusterLabels:
    """One run's outcome: the model now in force and every keyframe's label under it."""

    model: ClusterModel
    frame: pl.DataFrame  # LABELS_SCHEMA columns, every keyframe, in key order
    assigned: int  # keyframes labelled by this run
    refit: str  # why the model was refitted ("" when it was kept): save it
    drift: float | None  # the new keyframes' drift from the kept model; None when not measured


def refit_reason(model: ClusterModel | None, embeddings: str, rebuild: bool) -> str:
    """Why the stored cluster model cannot label new keyframes as it is ("" when it can)."""
    if rebuild:
        return "requested"
    if model is None:
        return "no saved model"
    if model.fitted_on != embeddings:
        return "embedding config changed"
    return ""


def kept_labels(previous: pl.DataFrame, keys: pl.DataFrame, model: ClusterModel) -> pl.DataFrame:
    """Last run's labels (`previous`) of keyframes still present, given by this model version."""
    if not previous.height:
        return pl.DataFrame(schema=LABELS_SCHEMA)
    previous = previous.filter(pl.col("ai_cluster_version") == model.version)
    return previous.select(list(LABELS_SCHEMA)).cast(LABELS_SCHEMA).join(keys, on=KEYS, how="semi")


def label_keyframes(
    model: ClusterModel | None,
    previous: pl.DataFrame,
    keys: pl.DataFrame,
    vectors: Callable[[pl.DataFrame], np.ndarray],
    embeddings: str,
    rebuild: bool,
    config: ClusterConfig,
) -> ClusterLabels:
    """Label every keyframe in `keys` (KEYS columns): keep `previous` labels of this model,
    assign the rest to its nearest centroids, or refit when `refit_reason` or drift says so.
    `vectors(keys)` gives those keyframes' (n, d) embeddings; `embeddings` names their space."""
    refit = refit_reason(model, embeddings, rebuild)
    kept = pl.DataFrame(schema=LABELS_SCHEMA) if refit else kept_labels(previous, keys, model)
    fresh = keys.select(KEYS).join(kept, on=KEYS, how="anti")
    labels, distance = np.empty(0, np.int64), np.empty(0, np.float32)
    drifted = None
    if fresh.height and not refit:
        labels, distance = assign_clusters(model, vectors(fresh))
        drifted = round(drift(model, distance), 4)
        refit = "drift" if needs_recluster(model, distance) else ""
    if refit:
        kept, fresh = kept.clear(), keys.select(KEYS)
        matrix = vectors(fresh)
        model = fit_clusters(matrix, config, fitted_on=embeddings)
        labels, distance = assign_clusters(model, matrix)
    fresh = fresh.with_columns(
        ai_cluster_id=pl.Series(labels, dtype=pl.Int64),
        ai_cluster_distance=pl.Series(distance, dtype=pl.Float32),
        ai_cluster_version=pl.lit(model.version),
    )
    frame = pl.concat([kept, fresh]).sort(KEYS)
    return ClusterLabels(model, frame, fresh.height, refit, drifted)


def cluster_sizes(labels: ClusterLabels) -> np.ndarray:
    """Keyframes per cluster id of the model (noise not counted), for the sizes chart."""
    every = labels.frame["ai_cluster_id"].to_numpy()
    return np.bincount(every[every >= 0], minlength=len(labels.model.centroids))


def labels_metadata(labels: ClusterLabels, previous: ClusterModel | None) -> dict[str, Any]:
    """What a labelling run did, for the UI; `previous` is the model the run started from."""
    return {
        "version": labels.model.version,
        "refit": labels.refit or None,
        "previous_version": previous and previous.version if labels.refit else None,
        "assigned_rows": labels.assigned,
        "drift": labels.drift,
        "clusters": len(labels.model.centroids),
    }
