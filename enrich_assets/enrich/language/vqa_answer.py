"""The five VQA answer shapes lerobot (0.6.1) accepts, in pixels of the frame as decoded.

The key sets are lerobot's own (`lerobot.annotations.steerable_pipeline.validator.
VQA_ANSWER_SHAPES`); a shape is told apart by its keys, never by a `type` field. The vqa
module drops answers that fit none, the validator refuses them, the migration turns the
old normalised shapes into these: all three read this one definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SPATIAL_RELATIONS = frozenset(
    {"left_of", "right_of", "above", "below", "in_front_of", "behind", "on", "in", "near"}
)
ANSWER_KEYS: dict[str, frozenset[str]] = {
    "bbox": frozenset({"detections"}),
    "keypoint": frozenset({"label", "point_format", "point"}),
    "count": frozenset({"label", "count"}),
    "attribute": frozenset({"label", "attribute", "value"}),
    "spatial": frozenset({"subject", "relation", "object"}),
}
OPTIONAL_KEYS: dict[str, frozenset[str]] = {"count": frozenset({"note"})}
DETECTION_KEYS = frozenset({"label", "bbox_format", "bbox"})


@dataclass(frozen=True)
class BoxAnswer:
    """One box of a bbox answer: (x_min, y_min, x_max, y_max) in pixels."""

    label: str
    bbox: tuple[float, float, float, float]


def is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _pixels(value: Any, n: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in value
        )
    )


def _box(detection: Any) -> BoxAnswer | None:
    if not isinstance(detection, dict) or set(detection) != DETECTION_KEYS:
        return None
    box = detection["bbox"]
    ok = is_text(detection["label"]) and detection["bbox_format"] == "xyxy" and _pixels(box, 4)
    if not ok or not (box[0] < box[2] and box[1] < box[3]):
        return None
    return BoxAnswer(detection["label"], tuple(float(v) for v in box))  # type: ignore[arg-type]


def bbox_answer_boxes(answer: Any) -> list[BoxAnswer] | None:
    """The boxes of a bbox answer (possibly none: nothing found), or None if `answer` is
    not a well-formed bbox answer. Pure, for anyone comparing VQA boxes with others."""
    if not isinstance(answer, dict) or set(answer) != ANSWER_KEYS["bbox"]:
        return None
    detections = answer["detections"]
    if not isinstance(detections, list):
        return None
    boxes = [_box(d) for d in detections]
    return None if any(b is None for b in boxes) else boxes  # type: ignore[return-value]


def _fits(answer: dict[str, Any], kind: str) -> bool:
    if kind == "bbox":
        return bbox_answer_boxes(answer) is not None
    if kind == "keypoint":
        return (
            is_text(answer["label"])
            and answer["point_format"] == "xy"
            and _pixels(answer["point"], 2)
        )
    if kind == "count":
        count, note = answer["count"], answer.get("note")
        return (
            is_text(answer["label"])
            and type(count) is int
            and count >= 0
            and (note is None or isinstance(note, str))
        )
    if kind == "attribute":
        return all(is_text(answer[k]) for k in ("label", "attribute", "value"))
    return (
        is_text(answer["subject"])
        and is_text(answer["object"])
        and answer["relation"] in SPATIAL_RELATIONS
    )


def vqa_answer_shape(answer: Any) -> str | None:
    """The answer's shape (bbox, keypoint, count, attribute, spatial), or None if none fits:
    exactly the shape's keys (count may add a `note`), each value of the right kind."""
    if not isinstance(answer, dict):
        return None
    keys = set(answer)
    for kind, required in ANSWER_KEYS.items():
        if required <= keys <= required | OPTIONAL_KEYS.get(kind, frozenset()):
            return kind if _fits(answer, kind) else None
    return None


def _map_points(answer: dict[str, Any], f: Callable[[float, float], tuple[float, float]]) -> dict:
    """`answer` with every (x, y) pair of its coordinates passed through `f`."""
    if "detections" in answer:
        detections = []
        for d in answer["detections"]:
            (x0, y0), (x1, y1) = f(*d["bbox"][:2]), f(*d["bbox"][2:])
            detections.append({**d, "bbox": [x0, y0, x1, y1]})
        return {**answer, "detections": detections}
    if "point" in answer:
        return {**answer, "point": list(f(*answer["point"]))}
    return dict(answer)


def scale_answer(answer: dict[str, Any], sx: float, sy: float) -> dict[str, Any]:
    """A well-formed answer's pixel coordinates multiplied by (sx, sy): from the pixels of
    the image the VLM was sent to those of the frame as decoded. Rounded to 0.1 px."""
    if sx == sy == 1:
        return dict(answer)
    return _map_points(answer, lambda x, y: (round(x * sx, 1), round(y * sy, 1)))


def answer_inside(answer: dict[str, Any], width: int, height: int) -> bool:
    """Whether every coordinate of a well-formed answer lies on a width x height image."""
    inside = True

    def check(x: float, y: float) -> tuple[float, float]:
        nonlocal inside
        inside = inside and x <= width and y <= height
        return x, y

    _map_points(answer, check)
    return inside


def from_normalised(answer: Any, width: int, height: int) -> dict[str, Any] | None:
    """The lerobot shape of an answer in this project's former shape (a `type` field,
    coordinates normalised to [0, 1]; `box`/`point`), or None if `answer` is not one."""
    if not isinstance(answer, dict) or "type" not in answer:
        return None
    old = {k: v for k, v in answer.items() if k != "type"}
    kind = answer["type"]
    if kind == "bbox" and _pixels(old.get("box"), 4):
        new = {
            "detections": [
                {"label": old.get("label"), "bbox_format": "xyxy", "bbox": list(old["box"])}
            ]
        }
    elif kind == "keypoint" and _pixels(old.get("point"), 2):
        new = {"label": old.get("label"), "point_format": "xy", "point": list(old["point"])}
    elif kind in ("count", "attribute", "spatial"):
        return old if vqa_answer_shape(old) == kind else None
    else:
        return None
    new = _map_points(new, lambda x, y: (round(x * width, 1), round(y * height, 1)))
    return new if vqa_answer_shape(new) == kind else None
