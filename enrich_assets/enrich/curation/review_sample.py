"""The keyframes a person reviews: a seeded sample stratified by semantic cluster.

Proportional allocation keeps the sample representative; at least one per cluster (noise
included) means a small cluster is never invisible to the reviewer. Rows are sorted by
their keys before sampling, so the catalog's file order cannot change the result.
"""

from __future__ import annotations

import numpy as np
import polars as pl

KEYS = ["episode_index", "camera", "frame_index"]
CLUSTER = "ai_cluster_id"
REVIEW_SIZE = 200


def allocate(sizes: np.ndarray, n: int) -> np.ndarray:
    """Keyframes to draw from each stratum: proportional to its size (largest remainder),
    at least one each, never more than it holds; sums to min(n, sizes.sum())."""
    sizes = np.asarray(sizes, np.int64)
    if n >= sizes.sum():
        return sizes.copy()
    if len(sizes) >= n:  # more strata than draws: one from each of the n largest
        quota = np.zeros_like(sizes)
        quota[np.argsort(-sizes, kind="stable")[:n]] = 1
        return quota
    target = n * sizes / sizes.sum()
    quota = np.clip(np.floor(target).astype(np.int64), 1, sizes)
    while quota.sum() < n:  # the most under-served stratum with room gets one more
        gap = np.where(quota < sizes, target - quota, -np.inf)
        quota[np.argmax(gap)] += 1
    while quota.sum() > n:  # the most over-served stratum above one gives one back
        gap = np.where(quota > 1, target - quota, np.inf)
        quota[np.argmin(gap)] -= 1
    return quota


def stratified_sample(
    frame: pl.DataFrame, by: str = CLUSTER, n: int = REVIEW_SIZE, seed: int = 0
) -> pl.DataFrame:
    """n rows of `frame` (keyed by KEYS) stratified by column `by`, or all rows when there
    are fewer; sorted by stratum, then keys. A null `by` value is a stratum of its own."""
    if n < 1:
        raise ValueError(f"review sample: size must be at least 1, got {n}")
    missing = [c for c in [*KEYS, by] if c not in frame.columns]
    if missing:
        raise ValueError(f"review sample: frame lacks columns {missing}")
    ordered = frame.sort([by, *KEYS], nulls_last=True)
    if ordered.height <= n:
        return ordered
    strata = ordered.with_row_index("_row").group_by(by, maintain_order=True).agg("_row")
    quota = allocate(strata["_row"].list.len().to_numpy(), n)
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(rows.to_numpy(), size=q, replace=False)
        for rows, q in zip(strata["_row"], quota, strict=True)
        if q
    ]
    return ordered[np.sort(np.concatenate(chosen))]


def review_sample(
    keyframes: pl.DataFrame, clusters: pl.DataFrame, n: int = REVIEW_SIZE, seed: int = 0
) -> pl.DataFrame:
    """The review sample of one dataset's keyframes (catalog tables `keyframes` and
    `ai_semantic_cluster`, either may be empty): keys, tech_timestamp, tech_image_path and
    ai_cluster_id (null when the keyframe has no cluster)."""
    if keyframes.height == 0:
        return pl.DataFrame()
    rows = keyframes.select(*KEYS, "tech_timestamp", "tech_image_path")
    if CLUSTER in clusters.columns:
        rows = rows.join(clusters.select(*KEYS, CLUSTER), on=KEYS, how="left")
    else:
        rows = rows.with_columns(pl.lit(None, pl.Int64).alias(CLUSTER))
    return stratified_sample(rows, CLUSTER, n, seed)
