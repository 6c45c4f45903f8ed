"""The ai_episode_diversity table: per episode, how varied its keyframes look and which other
demonstration repeats it most (vision and, where the dataset records them, state + action).

Diversity is recomputed over every episode each run: it is dataset-relative (a percentile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from enrich_assets.enrich.derived.diversity import (
    episode_diversity,
    episode_sums,
    most_similar_episode,
    percentile,
    repeated_demonstrations,
    trajectory_features,
)

TRAJECTORY_COLUMNS = ("observation.state", "action")
DIVERSITY_RANGE = (0.0, 2.0)  # cosine distance; outside (beyond rounding) is a bug
TOLERANCE = 1e-4


def state_action(frames: pa.Table) -> np.ndarray | None:
    """(T, state + action dims) float32 of one episode's frames; None when it lacks either."""
    if not set(TRAJECTORY_COLUMNS) <= set(frames.column_names):
        return None
    parts = [np.asarray(frames.column(c).to_pylist(), np.float32) for c in TRAJECTORY_COLUMNS]
    return np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1)


@dataclass(frozen=True)
class DiversityTable:
    frame: pl.DataFrame  # one row per episode, ascending
    metadata: dict[str, object]  # for the UI
    failure: str  # why the diversity_range check fails; "" when it passes


def diversity_table(
    embeddings: np.ndarray, episodes: np.ndarray, sequences: Sequence[np.ndarray] | None
) -> DiversityTable:
    """Rows of ai_episode_diversity from keyframe `embeddings` (n, d) and their `episodes`
    (n,); `sequences`: each episode's `state_action`, ascending, or None to skip repeats."""
    ids, diversity = episode_diversity(embeddings, episodes)
    partner = np.full(len(ids), -1, np.int64)
    similarity = np.full(len(ids), np.nan, np.float32)
    if sequences is not None:
        _, sums, _ = episode_sums(embeddings, episodes)
        pairs = repeated_demonstrations(sums, trajectory_features(sequences))
        partner, similarity = most_similar_episode(pairs, len(ids))
    found = partner >= 0
    frame = pl.DataFrame(
        {
            "episode_index": pl.Series(ids, dtype=pl.Int64),
            "ai_diversity": pl.Series(diversity, dtype=pl.Float64),
            "ai_diversity_percentile": pl.Series(percentile(diversity), dtype=pl.Float64),
            "ai_repeat_of_episode": pl.Series(np.where(found, ids[partner], 0), dtype=pl.Int64),
            "ai_repeat_similarity": pl.Series(similarity, dtype=pl.Float64),
        }
    ).with_columns(
        ai_repeat_of_episode=pl.when(pl.Series(found)).then("ai_repeat_of_episode"),
        ai_repeat_similarity=pl.when(pl.Series(found)).then("ai_repeat_similarity"),
    )
    finite = diversity[np.isfinite(diversity)]
    low, high = DIVERSITY_RANGE
    bad = ((finite < low - TOLERANCE) | (finite > high + TOLERANCE)).any()
    metadata = {
        "episodes": len(ids),
        "mean_diversity": round(float(finite.mean()), 4) if finite.size else None,
        "trajectories": sequences is not None,
    }
    return DiversityTable(frame, metadata, "diversity outside [0, 2]" if bad else "")
