"""ai_detections: the per-keyframe JSON array, its vocabulary, and the rules it obeys.

Each detection is {label, confidence, bbox: [x_min, y_min, x_max, y_max]} in the keyframe's
pixels, labels from the configured vocabulary (schemas/detection_vocabulary.yaml).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from enrich_assets.enrich.rules import RuleOutcome, outcome
from enrich_assets.infra.paths import schema_file

Detection = dict[str, Any]


def load_vocabulary(dataset_id: str | None = None, path: Path | None = None) -> list[str]:
    """The dataset's own category list if it has one, else the default list."""
    path = path or schema_file("detection_vocabulary.yaml")
    data = yaml.safe_load(path.read_text())
    labels = (data.get("datasets") or {}).get(dataset_id) or data.get("default") or []
    if not labels or len(set(labels)) != len(labels) or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"{path}: vocabulary for {dataset_id or 'default'} must be unique strings")
    return list(labels)


def normalize_detections(raw: Sequence[Detection], height: int, width: int) -> list[Detection]:
    """Boxes clipped to the image (empty ones dropped), rounded, most confident first."""
    kept = []
    for found in raw:
        x0, y0, x1, y1 = (float(v) for v in found["bbox"])
        box = [
            round(min(max(x0, 0.0), width), 2),
            round(min(max(y0, 0.0), height), 2),
            round(min(max(x1, 0.0), width), 2),
            round(min(max(y1, 0.0), height), 2),
        ]
        if box[0] < box[2] and box[1] < box[3]:
            confidence = round(float(found["confidence"]), 4)
            kept.append({"label": str(found["label"]), "confidence": confidence, "bbox": box})
    return sorted(kept, key=lambda d: -d["confidence"])


def detections_json(detections: Sequence[Detection]) -> str:
    return json.dumps(list(detections), separators=(",", ":"))


def detection_rows(
    rows: Sequence[Mapping[str, Any]], found: Sequence[Sequence[Detection]], allowed: set[str]
) -> tuple[list[dict[str, Any]], list[list[Detection]]]:
    """Catalog rows for keyframes `rows` from the model's raw detections `found` (same order):
    labels outside the dataset's vocabulary dropped, boxes clipped to the frame."""
    per_frame = [
        normalize_detections(
            [d for d in dets if d["label"] in allowed], r["tech_height"], r["tech_width"]
        )
        for r, dets in zip(rows, found, strict=True)
    ]
    out = [
        {
            "camera": r["camera"],
            "frame_index": r["frame_index"],
            "ai_detections": detections_json(dets),
            "ai_detection_count": len(dets),
        }
        for r, dets in zip(rows, per_frame, strict=True)
    ]
    return out, per_frame


def check_detections(
    per_keyframe: Sequence[Sequence[Detection]],
    sizes: Sequence[tuple[int, int]],
    vocabulary: Sequence[str],
) -> list[RuleOutcome]:
    """Boxes inside the (height, width) image and ordered, confidence in [0, 1], known labels."""
    allowed = set(vocabulary)
    outside, disordered, confidence, unknown = [], [], [], []
    for k, (found, (height, width)) in enumerate(zip(per_keyframe, sizes, strict=True)):
        for d, det in enumerate(found):
            where = f"keyframe {k} detection {d}"
            x0, y0, x1, y1 = det["bbox"]
            if min(x0, x1) < 0 or min(y0, y1) < 0 or max(x0, x1) > width or max(y0, y1) > height:
                outside.append(f"{where}: {det['bbox']} outside {width}x{height}")
            if not (x0 < x1 and y0 < y1):
                disordered.append(f"{where}: {det['bbox']}")
            if not 0.0 <= det["confidence"] <= 1.0:
                confidence.append(f"{where}: {det['confidence']}")
            if det["label"] not in allowed:
                unknown.append(f"{where}: {det['label']!r}")
    return [
        outcome("detection_bbox_inside", outside),
        outcome("detection_bbox_ordered", disordered),
        outcome("detection_confidence_range", confidence),
        outcome("detection_label_in_vocabulary", unknown),
    ]
