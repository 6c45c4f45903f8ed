"""A scripted VLM peer for the language modules: answers each request kind in the shapes of
docs/vlm.md, deterministically, from the `Key: value` lines of the prompt (VQA coordinates
in pixels of the images it was sent), and records every request. Token counts are
estimates (see `estimate_input_tokens`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from enrich_assets.models.vlm.types import VLMReply, VLMRequest

BOX = (0.42, 0.35, 0.55, 0.71)  # the bottle, as fractions of the image's width and height
POINT = (0.48, 0.36)


def vqa_answer(kind: str, width: int, height: int) -> dict[str, Any]:
    """lerobot's shape for `kind`, coordinates in pixels of a width x height image."""
    x0, y0, x1, y1 = BOX
    box = [x0 * width, y0 * height, x1 * width, y1 * height]
    point = [POINT[0] * width, POINT[1] * height]
    return {
        "bbox": {"detections": [{"label": "yellow bottle", "bbox_format": "xyxy", "bbox": box}]},
        "keypoint": {"label": "bottle cap", "point_format": "xy", "point": point},
        "count": {"label": "bottle", "count": 1},
        "attribute": {"label": "bottle", "attribute": "color", "value": "yellow"},
        "spatial": {"subject": "bottle", "relation": "on", "object": "table"},
    }[kind]


LABELS = ["reach for the yellow bottle", "grasp the yellow bottle", "lift the bottle", "hold it up"]
CAPTION = (
    "A yellow plastic bottle stands upright on a grey table in front of the robot, with a "
    "second empty area of the table visible to its right and the robot's two hands in view. "
    "The right hand is open and moving toward the bottle, its fingers spread as if about to "
    "wrap around the bottle's middle. The apparent goal is to pick up the yellow bottle."
)


def line(prompt: str, key: str) -> str | None:
    match = re.search(rf"^{key}:\s*(.*)$", prompt, re.MULTILINE | re.IGNORECASE)
    return match.group(1).strip() if match else None


def frames_of(request: VLMRequest) -> list[int]:
    listed = line(request.prompt, "Frames")
    return [int(x) for x in re.findall(r"\d+", listed)] if listed else []


def answer(request: VLMRequest) -> Any:
    """The scripted answer (text or JSON value) for one request, by kind."""
    frames = frames_of(request)
    count = int(line(request.prompt, "Count") or 3)
    task = line(request.prompt, "Task") or "manipulate the object"
    if request.kind == "caption":
        return CAPTION
    if request.kind == "plan_describe":
        return (
            f"frames {frames[0]}-{frames[-1]}: the right hand reaches for the bottle and lifts it."
        )
    if request.kind == "plan_segment":
        parts = np.array_split(np.asarray(frames), min(len(LABELS), len(frames)))
        return {
            "subtasks": [
                {"text": LABELS[i], "start_frame": int(p[0]), "end_frame": int(p[-1])}
                for i, p in enumerate(parts)
            ]
        }
    if request.kind == "task_aug":
        return {"rephrasings": [f"{task}, variant {i}" for i in range(count)]}
    if request.kind == "interjection":
        return {"text": "Good, now lift it up.", "say": "Lifting it."}
    if request.kind == "vqa":
        types = [t.strip() for t in (line(request.prompt, "Types") or "bbox").split(",")]
        return {
            "qa": [
                {
                    "question": f"Question about frame {f}?",
                    "answer": vqa_answer(
                        types[i % len(types)],
                        request.images[i].shape[1],
                        request.images[i].shape[0],
                    ),
                }
                for i, f in enumerate(frames[:count])
            ]
        }
    if request.kind == "task_from_video":
        return {"task": "pick up the yellow bottle from the table"}
    raise ValueError(f"no scripted answer for kind {request.kind!r}")


def estimate_input_tokens(request: VLMRequest) -> int:
    """~4 characters per text token; images as Qwen2-VL counts them (one per 28x28 patch)."""
    text = len(request.system + request.prompt) // 4
    images = sum(math.ceil(im.shape[0] / 28) * math.ceil(im.shape[1] / 28) for im in request.images)
    return text + images


class ScriptedVLM:
    """Implements VLMClient. `answer` may return a VLMReply to script a failure."""

    model = "scripted-peer"

    def __init__(self, answer: Callable[[VLMRequest], Any] = answer) -> None:
        self.answer = answer
        self.requests: list[VLMRequest] = []

    def complete(self, request: VLMRequest) -> VLMReply:
        self.requests.append(request)
        value = self.answer(request)
        if isinstance(value, VLMReply):
            return value
        text = value if isinstance(value, str) else json.dumps(value)
        return VLMReply(
            model=self.model,
            text=text,
            parsed=None if isinstance(value, str) else value,
            input_tokens=estimate_input_tokens(request),
            output_tokens=max(1, len(text) // 4),
        )

    def complete_many(self, requests: list[VLMRequest]) -> list[VLMReply]:
        return [self.complete(r) for r in requests]
