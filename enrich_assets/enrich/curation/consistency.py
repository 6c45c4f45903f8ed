"""Cross-enrichment consistency: do one episode's enrichments agree with each other?

Each enrichment is made by a different model (detector, captioner, VLM) or read from the
robot, so where two say something about the same frame they can be held against each other:

- `vqa_boxes_match_detections`: a VQA bbox answer vs the detector's boxes of the same label
  on the same keyframe (camera + timestamp): the best IoU must reach `min_vqa_iou`;
- `caption_objects_detected`: an object a keyframe's caption names (and the detector was
  asked for) must be among that keyframe's detections;
- `grasp_matches_gripper`: a subtask that says grasp/pick/grip or release/place/put/drop
  must see the gripper channel (settings `consistency.gripper_channel`) change within its
  span, widened by `gripper_window_s` each side;
- `subtasks_have_motion`: over a subtask's span (to the next one's first frame) state or
  action must change by at least `min_motion`.

Labels agree when they name the same lexicon object (captions.caption_tags: "red cube" and
"cubes" are one `cube`), else when equal ignoring case. Only what can be compared is: a VQA
frame that is not a keyframe, or a label the detector was not asked for, gives no row. Every
comparison is one `Finding` (a row of the `consistency` table); each check with at least one
comparison gives one WARN outcome per episode naming what disagreed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from enrich_assets.datasets.lerobot.language_format import LanguageRow
from enrich_assets.enrich.curation.golden_metrics import iou
from enrich_assets.enrich.language.captions import caption_tags
from enrich_assets.enrich.language.module import Subtask
from enrich_assets.enrich.language.plan import subtasks_from_rows
from enrich_assets.enrich.language.vqa_answer import bbox_answer_boxes
from enrich_assets.enrich.rules import RuleOutcome, Severity, outcome
from enrich_assets.infra.settings import GripperChannel

VQA_BOXES = "vqa_boxes_match_detections"
CAPTION_OBJECTS = "caption_objects_detected"
GRASP_GRIPPER = "grasp_matches_gripper"
SUBTASK_MOTION = "subtasks_have_motion"
RULES = {
    name: Severity.WARN for name in (VQA_BOXES, CAPTION_OBJECTS, GRASP_GRIPPER, SUBTASK_MOTION)
}
GRASP_ACTIONS = frozenset({"grasp", "grip", "pick"})  # lemmas of the caption lexicon
RELEASE_ACTIONS = frozenset({"release", "place", "put", "drop"})
MOTION_COLUMNS = ("observation.state", "action")

Row = Mapping[str, Any]


@dataclass(frozen=True)
class ConsistencySettings:
    """schemas/pipeline.yaml `consistency`."""

    min_vqa_iou: float = 0.3
    gripper_window_s: float = 0.5
    min_motion: float = 0.001


@dataclass(frozen=True)
class Finding:
    """One comparison: flagged when `value` < `threshold`."""

    check: str
    subject: str
    value: float
    threshold: float
    detail: str
    camera: str | None = None
    frame_index: int | None = None
    timestamp: float | None = None

    @property
    def flagged(self) -> bool:
        return self.value < self.threshold

    def row(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "frame_index": self.frame_index,
            "tech_check": self.check,
            "tech_subject": self.subject,
            "tech_timestamp": self.timestamp,
            "tech_value": self.value,
            "tech_threshold": self.threshold,
            "tech_flagged": self.flagged,
            "tech_detail": self.detail,
        }


@dataclass(frozen=True)
class EpisodeEnrichments:
    """One episode's catalog rows (plain dicts) and its per-frame signals."""

    keyframes: Sequence[Row] = ()  # camera, frame_index, tech_timestamp
    detections: Sequence[Row] = ()  # camera, frame_index, ai_detections (JSON)
    caption_tags: Sequence[Row] = ()  # camera, frame_index, ai_caption_objects
    vqa: Sequence[Row] = ()  # language_vqa rows
    plan: Sequence[Row] = ()  # language_plan rows
    timestamps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    signals: Mapping[str, np.ndarray] = field(default_factory=dict)  # column -> (T, d)


def frame_signals(frames: pa.Table) -> dict[str, np.ndarray]:
    """observation.state and action as (T, d) arrays, those of the two the dataset has."""
    return {
        c: np.asarray(frames.column(c).to_pylist(), np.float64).reshape(frames.num_rows, -1)
        for c in MOTION_COLUMNS
        if c in frames.column_names
    }


def object_names(label: str) -> set[str]:
    """The lexicon objects a label names, or the label itself (lower case) if none."""
    return set(caption_tags(label).objects) or {label.strip().lower()}


def _detections(rows: Sequence[Row]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    return {(r["camera"], r["frame_index"]): json.loads(r["ai_detections"] or "[]") for r in rows}


def _frame_key(camera: str, timestamp: float) -> tuple[str, float]:
    """Keyframe timestamps are float32 in the catalog, language ones float64 of the same."""
    return camera, float(np.float32(timestamp))


def vqa_box_findings(
    vqa: Sequence[Row],
    keyframes: Sequence[Row],
    detections: Sequence[Row],
    vocabulary: Sequence[str],
    min_iou: float,
) -> list[Finding]:
    """Each VQA box on a keyframe, of a label the detector was asked for, vs the detector's
    boxes of that label there: the best IoU (0 when it found none)."""
    frames = {_frame_key(r["camera"], r["tech_timestamp"]): r["frame_index"] for r in keyframes}
    found = _detections(detections)
    asked = set().union(*(object_names(v) for v in vocabulary))
    findings = []
    for row in vqa:
        if row["ai_language_role"] != "assistant" or row["camera"] is None:
            continue
        frame = frames.get(_frame_key(row["camera"], row["tech_timestamp"]))
        if frame is None or (row["camera"], frame) not in found:
            continue
        try:
            boxes = bbox_answer_boxes(json.loads(row["ai_language_content"] or ""))
        except json.JSONDecodeError:
            continue  # the language validator reports it
        for box in boxes or []:
            names = object_names(box.label)
            if not names & asked:
                continue
            same = [d for d in found[(row["camera"], frame)] if object_names(d["label"]) & names]
            best = max(same, key=lambda d: iou(box.bbox, d["bbox"]), default=None)
            value = iou(box.bbox, best["bbox"]) if best else 0.0
            seen = f"best detector box {best['bbox']}" if best else "no detector box"
            findings.append(
                Finding(
                    VQA_BOXES,
                    box.label,
                    round(value, 4),
                    min_iou,
                    f"{row['camera']} frame {frame}: VQA box {box.label!r} {list(box.bbox)}, "
                    f"{seen} of that label, IoU {value:.2f} (min {min_iou})",
                    row["camera"],
                    frame,
                    row["tech_timestamp"],
                )
            )
    return findings


def caption_object_findings(
    tags: Sequence[Row],
    keyframes: Sequence[Row],
    detections: Sequence[Row],
    vocabulary: Sequence[str],
) -> list[Finding]:
    """Each object a keyframe's caption names, that the detector was asked for: detected
    on that keyframe (1) or not (0, flagged)."""
    times = {(r["camera"], r["frame_index"]): r["tech_timestamp"] for r in keyframes}
    found = _detections(detections)
    asked = set().union(*(object_names(v) for v in vocabulary))
    findings = []
    for row in tags:
        key = (row["camera"], row["frame_index"])
        if key not in found:
            continue
        detected = set().union(*(object_names(d["label"]) for d in found[key]))
        for obj in row["ai_caption_objects"] or []:
            if obj not in asked:
                continue
            hit = obj in detected
            findings.append(
                Finding(
                    CAPTION_OBJECTS,
                    obj,
                    float(hit),
                    1.0,
                    f"{key[0]} frame {key[1]}: caption names {obj!r}, "
                    + (
                        "detected" if hit else f"not detected (found: {sorted(detected) or 'none'})"
                    ),
                    key[0],
                    key[1],
                    times.get(key),
                )
            )
    return findings


def subtask_spans(plan: Sequence[Row], timestamps: np.ndarray) -> list[Subtask]:
    """The subtask cover from language_plan catalog rows (each lasts until the next)."""
    rows = [
        LanguageRow("assistant", r["ai_language_content"], "subtask", r["tech_timestamp"])
        for r in plan
        if r["ai_language_style"] == "subtask"
    ]
    return subtasks_from_rows(rows, timestamps)


def gripper_signal(signals: Mapping[str, np.ndarray], channel: GripperChannel) -> np.ndarray | None:
    """The gripper's number per frame; None when the dataset lacks the column."""
    values = signals.get(channel.column)
    if values is None:
        return None
    if not channel.index < values.shape[1]:
        raise ValueError(
            f"settings consistency.gripper_channel: {channel.column} has {values.shape[1]} "
            f"numbers per frame, index {channel.index} is out of range"
        )
    return values[:, channel.index]


def grasp_findings(
    subtasks: Sequence[Subtask],
    timestamps: np.ndarray,
    gripper: np.ndarray,
    channel: str,
    window_s: float,
    min_change: float,
) -> list[Finding]:
    """Each grasp or release subtask: how much the gripper moves (max - min) over its span
    widened by `window_s` each side; too little is flagged."""
    t = np.asarray(timestamps, np.float64)
    findings = []
    for s in subtasks:
        actions = set(caption_tags(s.text).actions)
        kinds = [
            k for k, a in (("grasp", GRASP_ACTIONS), ("release", RELEASE_ACTIONS)) if actions & a
        ]
        if not kinds:
            continue
        start, end = t[s.start] - window_s, t[s.end] + window_s
        seen = gripper[(t >= start) & (t <= end)]
        change = float(seen.max() - seen.min())
        findings.append(
            Finding(
                GRASP_GRIPPER,
                s.text,
                round(change, 6),
                min_change,
                f"{'/'.join(kinds)} subtask {s.text!r} (t={t[s.start]:.2f}-{t[s.end]:.2f}s): "
                f"{channel} changes by {change:.4f} within ±{window_s}s (min {min_change})",
                timestamp=float(t[s.start]),
            )
        )
    return findings


def motion_findings(
    subtasks: Sequence[Subtask],
    timestamps: np.ndarray,
    signals: Mapping[str, np.ndarray],
    min_motion: float,
) -> list[Finding]:
    """Each subtask: the largest change of any state/action number from its first frame to
    the next subtask's first frame; below `min_motion` the robot stood still (flagged)."""
    present = {c: np.asarray(signals[c], np.float64) for c in MOTION_COLUMNS if c in signals}
    if not present:
        return []
    t = np.asarray(timestamps, np.float64)
    findings = []
    for s in subtasks:
        stop = min(s.end + 1, len(t) - 1) + 1
        change = max(float(np.abs(x[s.start : stop] - x[s.start]).max()) for x in present.values())
        findings.append(
            Finding(
                SUBTASK_MOTION,
                s.text,
                round(change, 6),
                min_motion,
                f"subtask {s.text!r} (t={t[s.start]:.2f}-{t[stop - 1]:.2f}s): "
                f"{'/'.join(present)} change by at most {change:.5f} (min {min_motion})",
                timestamp=float(t[s.start]),
            )
        )
    return findings


def episode_findings(
    episode: EpisodeEnrichments,
    vocabulary: Sequence[str],
    settings: ConsistencySettings,
    gripper: GripperChannel | None,
) -> list[Finding]:
    """Every comparison the episode's enrichments allow."""
    findings = [
        *vqa_box_findings(
            episode.vqa, episode.keyframes, episode.detections, vocabulary, settings.min_vqa_iou
        ),
        *caption_object_findings(
            episode.caption_tags, episode.keyframes, episode.detections, vocabulary
        ),
    ]
    subtasks = subtask_spans(episode.plan, episode.timestamps)
    signal = gripper_signal(episode.signals, gripper) if gripper is not None else None
    if gripper is not None and signal is not None:
        findings += grasp_findings(
            subtasks,
            episode.timestamps,
            signal,
            f"{gripper.column}[{gripper.index}]",
            settings.gripper_window_s,
            gripper.min_change,
        )
    findings += motion_findings(subtasks, episode.timestamps, episode.signals, settings.min_motion)
    return findings


def check_consistency(findings: Sequence[Finding]) -> list[RuleOutcome]:
    """One WARN outcome per check that compared something, naming what disagreed."""
    return [
        outcome(rule, [f.detail for f in findings if f.check == rule and f.flagged], severity)
        for rule, severity in RULES.items()
        if any(f.check == rule for f in findings)
    ]
