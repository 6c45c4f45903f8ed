"""Score pipeline outputs against the golden set: detections, subtask boundaries, captions.

Inputs are the catalog tables' rows for the golden set's dataset (polars frames as
`Catalog.read` returns them). A table with no rows for the golden items (not configured,
not yet run) gives None for its metrics, never 0; `coverage` says how many golden items
or episodes had an output at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from enrich_assets.enrich.curation.golden_set import GoldenSet, Key, ReferenceBox
from enrich_assets.infra.schema import load_yaml

KEY_COLUMNS = ("episode_index", "frame_index", "camera")
Box = Sequence[float]


@dataclass(frozen=True)
class MetricParams:
    iou_threshold: float = 0.5
    boundary_tolerance_s: float = 0.5


@dataclass(frozen=True)
class GoldenScores:
    metrics: dict[str, float | None]  # metric -> value in [0, 1], None when not measured
    coverage: dict[str, tuple[int, int]]  # output -> (golden items/episodes with one, all)


def load_metric_params() -> MetricParams:
    """schemas/golden.yaml `metrics`."""
    return MetricParams(**load_yaml("golden.yaml")["metrics"])


def score_golden(
    golden: GoldenSet,
    detections: pl.DataFrame,
    plan: pl.DataFrame,
    captions: pl.DataFrame,
    params: MetricParams = MetricParams(),
) -> GoldenScores:
    """All metrics: from ai_detections, language_plan and ai_caption rows."""
    parts = [
        score_detections(golden, detections, params.iou_threshold),
        score_boundaries(golden, plan, params.boundary_tolerance_s),
        score_captions(golden, captions),
    ]
    return GoldenScores(
        {k: v for p in parts for k, v in p.metrics.items()},
        {k: v for p in parts for k, v in p.coverage.items()},
    )


def score_detections(
    golden: GoldenSet, detections: pl.DataFrame, iou_threshold: float = 0.5
) -> GoldenScores:
    """Recall of reference boxes (IoU >= threshold, accepted label) and mean IoU of matches."""
    found = _by_key(detections, "ai_detections")
    covered = [item for item in golden.items if item.key in found]
    ious = [
        iou
        for item in covered
        for iou in match_boxes(item.detections, json.loads(found[item.key] or "[]"), iou_threshold)
    ]
    references = sum(len(item.detections) for item in covered)
    return GoldenScores(
        {
            "detection_recall": len(ious) / references if references else None,
            "detection_mean_iou": sum(ious) / len(ious) if ious else None,
        },
        {"detections": (len(covered), len(golden.items))},
    )


def score_boundaries(
    golden: GoldenSet, plan: pl.DataFrame, tolerance_s: float = 0.5
) -> GoldenScores:
    """Precision, recall and F1 of predicted subtask starts (after the first) within tolerance."""
    starts: dict[int, list[float]] = {}
    if plan.height:
        _require(plan, ("episode_index", "ai_language_style", "tech_timestamp"))
        for episode, style, t in plan.select(
            "episode_index", "ai_language_style", "tech_timestamp"
        ).iter_rows():
            starts.setdefault(episode, [])
            if style == "subtask" and t is not None:
                starts[episode].append(t)
    covered = [e for e in golden.episodes if e.episode_index in starts]
    matched = predicted = true = 0
    for episode in covered:
        guesses = sorted(starts[episode.episode_index])[1:]  # the first subtask starts at t0
        truth = [b.timestamp for b in episode.boundaries]
        matched += match_boundaries(truth, guesses, tolerance_s)
        predicted += len(guesses)
        true += len(truth)
    measured = bool(covered) and true > 0
    return GoldenScores(
        {
            "boundary_precision": matched / predicted if predicted else None,
            "boundary_recall": matched / true if measured else None,
            "boundary_f1": 2 * matched / (predicted + true) if measured else None,
        },
        {"boundaries": (len(covered), len(golden.episodes))},
    )


def score_captions(golden: GoldenSet, captions: pl.DataFrame) -> GoldenScores:
    """Share of the objects in frame that the caption names by colour and shape.

    A keyframe whose caption failed (null) names nothing; one with no row is not covered.
    """
    found = _by_key(captions, "ai_caption")
    covered = [item for item in golden.items if item.key in found]
    named = sum(
        any(mentions(found[item.key] or "", phrase) for phrase in obj.mentions)
        for item in covered
        for obj in item.objects
    )
    total = sum(len(item.objects) for item in covered)
    return GoldenScores(
        {"caption_object_recall": named / total if total else None},
        {"captions": (len(covered), len(golden.items))},
    )


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two [x_min, y_min, x_max, y_max] boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(
    references: Sequence[ReferenceBox], detections: Sequence[dict], iou_threshold: float
) -> list[float]:
    """IoUs of one-to-one matches, best pairs first; a pair needs an accepted label."""
    pairs = sorted(
        (
            (iou(ref.box, det["bbox"]), r, d)
            for r, ref in enumerate(references)
            for d, det in enumerate(detections)
            if det["label"] in ref.labels
        ),
        reverse=True,
    )
    used_refs: set[int] = set()
    used_dets: set[int] = set()
    matched = []
    for value, r, d in pairs:
        if value >= iou_threshold and r not in used_refs and d not in used_dets:
            used_refs.add(r)
            used_dets.add(d)
            matched.append(value)
    return matched


def match_boundaries(truth: Sequence[float], predicted: Sequence[float], tolerance: float) -> int:
    """Most one-to-one pairs with |t - p| <= tolerance (two sorted lists, one pass)."""
    a, b = sorted(truth), sorted(predicted)
    i = j = matched = 0
    while i < len(a) and j < len(b):
        if abs(a[i] - b[j]) <= tolerance + 1e-9:
            matched, i, j = matched + 1, i + 1, j + 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return matched


def mentions(caption: str, phrase: str) -> bool:
    """Whether `phrase` ("red cube") appears as whole words, plural allowed."""
    words = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.search(rf"\b{words}(?:e?s)?\b", caption, re.IGNORECASE) is not None


def _by_key(rows: pl.DataFrame, column: str) -> dict[Key, str | None]:
    """One value per (episode, frame, camera); two rows for one key mean mixed datasets."""
    if not rows.height:
        return {}
    _require(rows, (*KEY_COLUMNS, column))
    found: dict[Key, str | None] = {}
    for episode, frame, camera, value in rows.select(*KEY_COLUMNS, column).iter_rows():
        key = (episode, frame, camera)
        if key in found:
            raise ValueError(f"{column}: two rows for {key}; pass one dataset's rows")
        found[key] = value
    return found


def _require(rows: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ValueError(f"golden scoring needs columns {missing}, got {rows.columns}")
