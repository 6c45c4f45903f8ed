"""Keyframe policies and quality scores, as plain functions (no Dagster)."""

from __future__ import annotations

import numpy as np

from enrich_assets.enrich.episode.keyframes import (
    KeyframePolicy,
    check_keyframes,
    select_by_count,
    select_keyframes,
)
from enrich_assets.enrich.episode.quality import QualityConfig, check_quality, score_image


def test_count_policy_keeps_first_last_and_even_spread() -> None:
    assert select_by_count(393, 5) == [0, 98, 196, 294, 392]
    assert select_by_count(3, 5) == [0, 1, 2]
    assert select_by_count(0, 5) == []


def test_fps_policy_ticks_on_real_frames() -> None:
    ts = (np.arange(95) / 30).astype(np.float32)
    picks = select_keyframes(KeyframePolicy(mode="fps", fps=1.0), ts)
    assert picks == [0, 30, 60, 90, 94]


def test_scene_change_policy_finds_the_cut() -> None:
    thumbs = np.zeros((20, 4, 4), np.float32)
    thumbs[12:] = 1.0  # a hard cut at frame 12
    picks = select_keyframes(
        KeyframePolicy(mode="scene_change", threshold=0.5), np.arange(20.0), lambda: thumbs
    )
    assert picks == [0, 12, 19]


def test_keyframe_checks_fail_on_missing_camera_and_inexact_timestamp() -> None:
    ts = (np.arange(10) / 30).astype(np.float32)
    good = check_keyframes(["a"], [("a", float(ts[3]))], ts)
    assert all(o.passed for o in good)
    bad = {o.rule: o for o in check_keyframes(["a", "b"], [("a", float(ts[3]) + 1e-4)], ts)}
    assert not bad["keyframe_per_camera"].passed and "b" in bad["keyframe_per_camera"].message
    assert not bad["keyframe_timestamp_exact"].passed


def _scene(rng: np.random.Generator) -> np.ndarray:
    img = np.full((96, 128, 3), 120, np.uint8)
    for _ in range(20):  # sharp-edged rectangles
        y, x = rng.integers(0, 80), rng.integers(0, 110)
        img[y : y + 16, x : x + 18] = rng.integers(0, 255, 3)
    return img


def test_quality_flags_blur_dark_and_dead_regions() -> None:
    cfg = QualityConfig()
    sharp = _scene(np.random.default_rng(0))
    blurred = sharp.astype(np.float32)
    for _ in range(4):  # box blur
        blurred = (
            blurred
            + np.roll(blurred, 1, 0)
            + np.roll(blurred, 1, 1)
            + np.roll(blurred, -1, 0)
            + np.roll(blurred, -1, 1)
        ) / 5
    s, b = score_image(sharp, cfg), score_image(blurred.astype(np.uint8), cfg)
    assert b["tech_blur_laplacian_var"] < s["tech_blur_laplacian_var"] / 4
    assert b["tech_is_blurry"] and not s["tech_is_blurry"]
    dark = score_image((sharp * 0.1).astype(np.uint8), cfg)
    assert dark["tech_is_dark"] and dark["tech_quality_score"] < s["tech_quality_score"]
    half_black = sharp.copy()
    half_black[:48] = 0
    assert abs(score_image(half_black, cfg)["tech_completeness"] - 0.5) < 0.05
    assert 0.0 <= s["tech_quality_score"] <= 1.0


def test_quality_check_fails_out_of_range_and_wrong_count() -> None:
    row = {"frame_index": 0, "tech_quality_score": 1.5, "tech_completeness": 1.0}
    outcomes = {o.rule: o for o in check_quality([row], expected_rows=2)}
    assert not outcomes["quality_in_unit_range"].passed
    assert not outcomes["quality_row_count"].passed
