"""Deterministic, plausible answers for each prompt kind, so the demo runs without a model.

Reads the `Task:`, `Frames:`, `Count:` and `Types:` lines of the prompt (docs/vlm.md) and
answers in the documented shape for the kind. VQA coordinates are pixels of the images
sent (their sizes; without images, the `Image size:` line). Same prompt and image sizes,
same answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence

DEFAULT_TASK = "manipulate the object"
VQA_TYPES = ("bbox", "keypoint", "count", "attribute", "spatial")
RELATIONS = ("left_of", "right_of", "above", "below", "in_front_of", "behind", "on", "in", "near")
COLORS = ("red", "blue", "green", "yellow", "white", "black", "gray", "orange")
_NOT_OBJECTS = (
    set(
        "a an the and then it its to on in into onto from of with up down off out over under at by "
        "for their them this that these those left right top bottom side back front other next "
        "pick place put move push pull open close grasp grab lift drop take insert remove turn "
        "rotate fold stack pour wipe slide press hand give bring set get manipulate hold carry "
        "robot arm gripper please small big large tiny long short empty full new old".split()
    )
    | set(COLORS)
    | {"purple", "pink", "brown"}
)


class UnknownKind(ValueError):
    pass


def scripted_answer(kind: str, prompt: str, image_sizes: Sequence[tuple[int, int]]) -> str:
    """The answer to a `kind` request; `image_sizes` are the (width, height) of its images."""
    n_images = len(image_sizes)
    task = _field(prompt, "task") or DEFAULT_TASK
    task = " ".join(task.rstrip(".").split()[:30])
    objects = _objects(task)
    rng = random.Random(hashlib.sha256(f"{kind}\n{prompt}".encode()).digest())
    frames = _ints(_field(prompt, "frames")) or list(range(max(n_images, 1)))
    count = int(_field(prompt, "count") or 3)
    if kind == "caption":
        return _caption(task, objects, n_images)
    if kind == "plan_describe":
        return _narration(task, objects)
    if kind == "plan_segment":
        return json.dumps({"subtasks": _segments(task, objects, frames)})
    if kind == "task_aug":
        return json.dumps({"rephrasings": _rephrasings(task, count)})
    if kind == "interjection":
        return json.dumps(_interjection(objects[0], rng))
    if kind == "vqa":
        types = [t.strip() for t in (_field(prompt, "types") or "").split(",") if t.strip()]
        fallback = _size_line(prompt)  # for images whose size could not be read, or none
        sizes = [size if min(size) > 0 else fallback for size in image_sizes] or [fallback]
        return json.dumps({"qa": _vqa(objects, types or list(VQA_TYPES), count, sizes, rng)})
    if kind == "task_from_video":
        return json.dumps({"task": _field(prompt, "task") or "pick up the object and place it"})
    raise UnknownKind(f"local stub has no scripted answer for kind {kind!r}")


def _field(prompt: str, key: str) -> str | None:
    match = re.search(rf"^\s*{key}\s*:\s*(.+?)\s*$", prompt, re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else None


def _size_line(prompt: str) -> tuple[int, int]:
    """(width, height) from an `Image size: 640x480` line; 640x480 without one."""
    found = _ints(_field(prompt, "image size"))
    return (found[0], found[1]) if len(found) == 2 and min(found) > 0 else (640, 480)


def _ints(text: str | None) -> list[int]:
    return [int(x) for x in re.findall(r"-?\d+", text or "")]


def _objects(task: str) -> list[str]:
    words = [w for w in re.findall(r"[a-zA-Z]+", task.lower()) if len(w) > 2]
    found = [w for w in dict.fromkeys(words) if w not in _NOT_OBJECTS]
    return found or ["object"]


def _caption(task: str, objects: list[str], n_images: int) -> str:
    listed = ", ".join(f"the {o}" for o in objects[:5])
    views = f"the {n_images} frames shown" if n_images > 1 else "the frame shown"
    return (
        f"A robot arm works at a tabletop scene, carrying out the task to {task}. "
        f"The visible objects include {listed}, together with the robot gripper, the work "
        "surface and a plain background behind them. "
        f"Across {views}, the gripper approaches the {objects[0]}, makes contact with it and "
        "moves it steadily while the rest of the scene stays still and evenly lit."
    )


def _steps(objects: list[str]) -> list[str]:
    target = objects[0]
    goal = f"the {objects[1]}" if len(objects) > 1 else "its goal position"
    return [
        f"reach for the {target}",
        f"grasp the {target}",
        f"move the {target} to {goal}",
        f"release the {target}",
    ]


def _narration(task: str, objects: list[str]) -> str:
    reach, grasp, move, release = _steps(objects)
    return (
        f"First, the robot arm moves to {reach.replace('reach for', 'reach')}. "
        f"Then it closes its gripper to {grasp} and lifts it off the surface. "
        f"Next, it carries on to {move}, keeping the motion smooth. "
        f"Finally, it opens the gripper to {release} and withdraws, which completes the task "
        f"to {task}."
    )


def _segments(task: str, objects: list[str], frames: list[int]) -> list[dict]:
    """Contiguous spans over the listed frames: each ends where the next starts."""
    frames = sorted(set(frames))
    if len(frames) == 1:
        return [{"text": task, "start_frame": frames[0], "end_frame": frames[0]}]
    steps = _steps(objects)
    k = min(len(steps), len(frames) - 1)
    texts = {1: [task], 2: steps[1:3], 3: steps[:3], 4: steps}[k]
    cuts = [round(i * (len(frames) - 1) / k) for i in range(k + 1)]
    return [
        {"text": text, "start_frame": frames[a], "end_frame": frames[b]}
        for text, a, b in zip(texts, cuts, cuts[1:], strict=False)
    ]


def _rephrasings(task: str, count: int) -> list[str]:
    forms = [
        f"{prefix}{task}{suffix}"
        for suffix in (".", " now.", ", please.", " for me.")
        for prefix in ("Please ", "Now ", "Robot, ", "Carefully ", "")
    ]
    variants = [f[0].upper() + f[1:] for f in forms if f.rstrip(".") != task]
    return [
        variants[i] if i < len(variants) else f"{variants[i % len(variants)]} (variant {i})"
        for i in range(count)
    ]


def _interjection(obj: str, rng: random.Random) -> dict[str, str]:
    text, say = rng.choice(
        [
            (f"Wait, grab the {obj} from the other side.", f"Okay, switching sides on the {obj}."),
            (f"Slow down a little near the {obj}.", f"Understood, moving slowly near the {obj}."),
            (f"Actually, lift the {obj} a bit higher.", f"Sure, lifting the {obj} higher."),
        ]
    )
    return {"text": text, "say": say}


def _vqa(
    objects: list[str],
    types: list[str],
    count: int,
    sizes: list[tuple[int, int]],
    rng: random.Random,
) -> list[dict]:
    """Pair i is about image i: its boxes and points are whole pixels inside that image."""
    items = []
    for i in range(count):
        kind = types[i % len(types)]
        w, h = sizes[min(i, len(sizes) - 1)]
        obj = objects[i % len(objects)]
        other = objects[(i + 1) % len(objects)] if len(objects) > 1 else "gripper"
        if kind == "bbox":
            x0, y0 = rng.uniform(0.05, 0.6), rng.uniform(0.05, 0.6)
            x1, y1 = x0 + rng.uniform(0.1, 0.35), y0 + rng.uniform(0.1, 0.35)
            box = [round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)]
            question = f"Where is the {obj}? Give its bounding box."
            detection = {"label": obj, "bbox_format": "xyxy", "bbox": box}
            answer = {"detections": [detection]}
        elif kind == "keypoint":
            question = f"Point to the {obj}."
            point = [round(rng.uniform(0.1, 0.9) * w), round(rng.uniform(0.1, 0.9) * h)]
            answer = {"label": obj, "point_format": "xy", "point": point}
        elif kind == "count":
            question = f"How many of the {obj} are visible?"
            answer = {"label": obj, "count": rng.randint(1, 3)}
        elif kind == "attribute":
            question = f"What color is the {obj}?"
            answer = {"label": obj, "attribute": "color", "value": rng.choice(COLORS)}
        elif kind == "spatial":
            question = f"Where is the {obj} relative to the {other}?"
            answer = {
                "subject": obj,
                "relation": rng.choice(RELATIONS),
                "object": other,
            }
        else:
            raise UnknownKind(f"unknown vqa answer type {kind!r}; use one of {VQA_TYPES}")
        items.append({"question": question, "answer": answer})
    return items
