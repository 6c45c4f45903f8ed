"""The ai_near_duplicates rows and their summary from a small index with planted copies."""

from __future__ import annotations

import numpy as np
import polars as pl

from enrich_assets.enrich.derived.duplicate_rows import (
    add_keyframes,
    duplicate_rows,
    summarize_duplicates,
)
from enrich_assets.enrich.derived.near_duplicates import NearDuplicateIndex


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def three_episodes() -> tuple[pl.DataFrame, np.ndarray]:
    """Episodes 0-2, 4 keyframes each on camera "top"; episode 2 copies episode 0 entirely,
    and frame 3 of episode 1 copies frame 1 of episode 0."""
    rng = np.random.default_rng(0)
    x = _unit(rng.standard_normal((12, 64)))
    x[8:12] = _unit(x[0:4] + rng.standard_normal((4, 64)) * 0.005)
    x[7] = _unit(x[1] + rng.standard_normal(64) * 0.005)
    rows = pl.DataFrame(
        {
            "id": np.arange(12, dtype=np.int64),
            "episode_index": np.repeat([0, 1, 2], 4),
            "camera": ["top"] * 12,
            "frame_index": np.tile(np.arange(4) * 10, 3),
        }
    )
    return rows, x


def test_rows_name_the_earliest_copy_by_its_keys() -> None:
    rows, x = three_episodes()
    nd = NearDuplicateIndex()
    add_keyframes(nd, rows, x)
    frame = duplicate_rows(nd, rows)
    assert frame.columns[:3] == ["episode_index", "camera", "frame_index"]
    assert frame.height == 12
    ep2 = frame.filter(pl.col("episode_index") == 2)
    assert ep2["ai_dup_of_episode"].to_list() == [0, 0, 0, 0]
    assert ep2["ai_dup_of_frame"].to_list() == [0, 10, 20, 30]
    assert (
        ep2["ai_is_duplicate_episode"].all() and ep2["ai_duplicate_of_episode"].to_list() == [0] * 4
    )
    copy = frame.filter((pl.col("episode_index") == 1) & (pl.col("frame_index") == 30)).row(
        0, named=True
    )
    assert (copy["ai_dup_of_episode"], copy["ai_dup_of_frame"], copy["ai_dup_group"]) == (0, 10, 1)
    first = frame.filter(pl.col("episode_index") == 0)
    assert first["ai_dup_of_episode"].is_null().all()  # the earliest points at nobody
    assert first["ai_dup_group"].to_list() == [0, 1, 2, 3]  # but leads its group
    assert not first["ai_is_duplicate_episode"].any()
    assert frame.filter(pl.col("episode_index") == 1)["ai_duplicate_episode_share"][0] == 0.25


def test_time_order_is_episode_then_frame() -> None:
    """Episode 2 is added first, yet episode 0's keyframes are the earlier copies."""
    rows, x = three_episodes()
    nd = NearDuplicateIndex()
    later = rows.filter(pl.col("episode_index") == 2)
    add_keyframes(nd, later, x[8:12])
    add_keyframes(nd, rows.filter(pl.col("episode_index") < 2), x[:8])
    frame = duplicate_rows(nd, rows)
    assert frame.filter(pl.col("episode_index") == 2)["ai_dup_of_episode"].to_list() == [0] * 4


def test_summary_counts_and_fails_past_the_share() -> None:
    rows, x = three_episodes()
    nd = NearDuplicateIndex()
    add_keyframes(nd, rows, x)
    frame = duplicate_rows(nd, rows)
    summary = summarize_duplicates(frame)
    assert summary.duplicate_keyframes == 5 and summary.groups == 4
    assert summary.duplicate_episodes == [2] and summary.failure == ""
    strict = summarize_duplicates(frame, max_share=0.3)
    assert strict.failure == "1 of 3 episodes flagged"
