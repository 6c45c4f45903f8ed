"""The five VQA answer shapes lerobot accepts: used by the vqa module to drop unusable
answers and by the validator to refuse them, so both read the same definition."""

from __future__ import annotations

from typing import Any

SPATIAL_RELATIONS = frozenset(
    {"left_of", "right_of", "above", "below", "in_front_of", "behind", "on", "in", "near"}
)


def is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _unit_coords(value: Any, n: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in value
        )
    )


def vqa_answer_shape(answer: Any) -> str | None:
    """The answer's shape (bbox, keypoint, count, attribute, spatial), or None if none fits."""
    if not isinstance(answer, dict):
        return None
    kind = answer.get("type")
    if kind == "bbox":
        box = answer.get("box")
        ok = (
            is_text(answer.get("label"))
            and _unit_coords(box, 4)
            and box[0] < box[2]
            and box[1] < box[3]
        )
    elif kind == "keypoint":
        ok = is_text(answer.get("label")) and _unit_coords(answer.get("point"), 2)
    elif kind == "count":
        count = answer.get("count")
        ok = is_text(answer.get("label")) and type(count) is int and count >= 0
    elif kind == "attribute":
        ok = all(is_text(answer.get(k)) for k in ("label", "attribute", "value"))
    elif kind == "spatial":
        ok = is_text(answer.get("subject")) and is_text(answer.get("object"))
        ok = ok and answer.get("relation") in SPATIAL_RELATIONS
    else:
        return None
    return kind if ok else None
