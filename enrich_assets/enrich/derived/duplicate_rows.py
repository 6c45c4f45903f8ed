"""The ai_near_duplicates table from a near-duplicate index: one row per indexed keyframe.

The index knows ids, pairs and episodes; the table speaks keys, so each keyframe names the
keyframe it duplicates by its keys and carries its episode's duplicate verdict. A dataset
with most episodes flagged says more about the threshold or the model than about the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from enrich_assets.enrich.derived.index_plan import KEYS
from enrich_assets.enrich.derived.near_duplicates import (
    NearDuplicateIndex,
    episode_duplicates,
    keyframe_duplicates,
)

MAX_DUPLICATE_EPISODE_SHARE = 0.5  # more flagged than this: the threshold or the model is off
FRAMES_PER_EPISODE = 1_000_000  # time order of a keyframe: episode * this + frame


def add_keyframes(nd: NearDuplicateIndex, new: pl.DataFrame, embeddings: np.ndarray) -> None:
    """Index `new` keyframes (id + keys, rows of `embeddings`) in time order, episode first."""
    episodes = new["episode_index"].to_numpy()
    order = episodes * FRAMES_PER_EPISODE + new["frame_index"].to_numpy()
    nd.add(embeddings, new["id"].to_numpy(), episodes, order)


def duplicate_rows(nd: NearDuplicateIndex, rows: pl.DataFrame) -> pl.DataFrame:
    """The ai_near_duplicates rows of every indexed keyframe (`rows`: id + keys)."""
    kf = keyframe_duplicates(nd)
    ep = episode_duplicates(nd)
    target = rows.select(
        pl.col("id").alias("dup_of"),
        pl.col("episode_index").alias("ai_dup_of_episode"),
        pl.col("camera").alias("ai_dup_of_camera"),
        pl.col("frame_index").alias("ai_dup_of_frame"),
    )
    of_episode = pl.col("of_episode")
    episodes = pl.DataFrame(
        {"episode_index": ep.episodes, "of_episode": ep.dup_of, "share": ep.fraction}
    ).select(
        "episode_index",
        ai_is_duplicate_episode=of_episode >= 0,
        ai_duplicate_of_episode=pl.when(of_episode >= 0).then(of_episode),
        ai_duplicate_episode_share="share",
    )
    groups = pl.DataFrame({"id": kf.ids, "ai_dup_group": kf.group, "dup_of": kf.dup_of})
    return (
        rows.join(groups, on="id")
        .join(target, on="dup_of", how="left")
        .join(episodes, on="episode_index", how="left")
        .drop("id", "dup_of")
        .sort(KEYS)
    )


@dataclass(frozen=True)
class DuplicateSummary:
    """What the rows say, for the UI and the duplicate_episode_share check."""

    duplicate_keyframes: int  # keyframes pointing at an earlier one
    groups: int
    duplicate_episodes: list[int]  # flagged episodes, ascending
    failure: str  # why the check fails; "" when it passes


def summarize_duplicates(
    frame: pl.DataFrame, max_share: float = MAX_DUPLICATE_EPISODE_SHARE
) -> DuplicateSummary:
    """Counts over `duplicate_rows` output; fails when more than `max_share` of the episodes
    are flagged as duplicates."""
    episodes = frame.unique("episode_index")
    flagged = episodes.filter("ai_is_duplicate_episode")["episode_index"].sort().to_list()
    failure = ""
    if len(flagged) > max_share * episodes.height:
        failure = f"{len(flagged)} of {episodes.height} episodes flagged"
    return DuplicateSummary(
        int(frame["ai_dup_of_episode"].is_not_null().sum()),
        frame.filter(pl.col("ai_dup_group") >= 0)["ai_dup_group"].n_unique(),
        flagged,
        failure,
    )
