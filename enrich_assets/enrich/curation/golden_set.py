"""The golden set: keyframes of the sample dataset with their known-right answers.

`data/golden/golden.json` holds, per keyframe, a reference caption, reference boxes (in the
detector's label vocabulary and bbox format) and the objects a caption should name; per
episode, the true subtask boundaries. `frames/*.png` are the keyframes themselves. It is
cut from the sample dataset's ground truth by `golden_build`, and applies only to the
dataset it was cut from: `golden_mismatches` says why another one is not it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enrich_assets.datasets.sample.generator import TRUTH_PATH
from enrich_assets.infra.paths import GOLDEN_DIR

GOLDEN_JSON = "golden.json"
FORMAT_VERSION = 1

Key = tuple[int, int, str]  # (episode_index, frame_index, camera), the catalog's row key


class GoldenSetError(ValueError):
    """A golden set or a ground-truth file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class ReferenceBox:
    name: str  # the truth's name: "red cube", "gripper"
    labels: tuple[str, ...]  # detector labels that count as right
    box: tuple[float, float, float, float]  # x_min, y_min, x_max, y_max pixels (max exclusive)


@dataclass(frozen=True)
class ReferenceObject:
    name: str
    mentions: tuple[str, ...]  # phrases that name it in a caption ("red cube", "red block")


@dataclass(frozen=True)
class GoldenItem:
    episode_index: int
    frame_index: int
    timestamp: float  # the source parquet's value
    camera: str
    image: str  # PNG, relative to the golden directory
    subtask: str  # the subtask under way at this frame
    caption: str
    objects: tuple[ReferenceObject, ...]  # in frame: a caption should name them
    detections: tuple[ReferenceBox, ...]  # visible enough that a detector should find them

    @property
    def key(self) -> Key:
        return (self.episode_index, self.frame_index, self.camera)


@dataclass(frozen=True)
class Boundary:
    subtask: str  # the subtask that starts here
    frame_index: int
    timestamp: float


@dataclass(frozen=True)
class GoldenEpisode:
    episode_index: int
    task: str
    length: int
    objects: tuple[str, ...]
    boundaries: tuple[Boundary, ...]  # where each subtask after the first starts


@dataclass(frozen=True)
class GoldenSet:
    params: dict[str, Any]  # the sample dataset it was cut from (see `truth_params`)
    build: dict[str, Any]  # how it was cut: schemas/golden.yaml `build`, keyframe policy
    episodes: tuple[GoldenEpisode, ...]
    items: tuple[GoldenItem, ...]


def read_truth(dataset_root: Path) -> dict[str, Any]:
    """The sample dataset's ground truth (meta/sample_truth.json)."""
    path = Path(dataset_root) / TRUTH_PATH
    if not path.is_file():
        raise GoldenSetError(f"{path}: missing; only the sample dataset has a ground truth")
    try:
        truth = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GoldenSetError(f"{path}: unreadable ground truth ({exc})") from exc
    if not isinstance(truth, dict) or truth.get("version") != 1 or "episodes" not in truth:
        raise GoldenSetError(f"{path}: not a version-1 sample ground truth")
    return truth


def truth_params(truth: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies a sample dataset: its generator's arguments."""
    return {
        "seed": truth["seed"],
        "episodes": len(truth["episodes"]),
        "width": truth["width"],
        "height": truth["height"],
        "fps": truth["fps"],
        "cameras": list(truth["cameras"]),
    }


def golden_mismatches(golden: GoldenSet, dataset_root: Path) -> list[str]:
    """Why the golden set does not describe the dataset at `dataset_root` ([] if it does)."""
    try:
        truth = read_truth(dataset_root)
    except GoldenSetError as exc:
        return [str(exc)]
    params = truth_params(truth)
    found = [
        f"{name}: golden set {golden.params.get(name)!r}, dataset {value!r}"
        for name, value in params.items()
        if golden.params.get(name) != value
    ]
    episodes = {e["episode_index"]: e for e in truth["episodes"]}
    for episode in golden.episodes:
        actual = episodes.get(episode.episode_index)
        seen = actual and (
            actual["task"],
            actual["length"],
            tuple(o["name"] for o in actual["objects"]),
        )
        if seen != (episode.task, episode.length, episode.objects):
            found.append(f"episode {episode.episode_index}: task, length or objects differ")
    return found


def load_golden_set(directory: Path = GOLDEN_DIR) -> GoldenSet:
    """Read and check a golden set; a malformed one raises GoldenSetError naming the file."""
    path = Path(directory) / GOLDEN_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GoldenSetError(f"{path}: unreadable golden set ({exc})") from exc
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise GoldenSetError(f"{path}: expected an object with version {FORMAT_VERSION}")
    fields_only = {k: v for k, v in data.items() if k != "version"}
    try:
        golden = _parse(GoldenSet, fields_only, "golden set")
    except (TypeError, ValueError) as exc:
        raise GoldenSetError(f"{path}: {exc}") from exc
    problems = _inconsistencies(golden, Path(directory))
    if problems:
        raise GoldenSetError(f"{path}: " + "; ".join(problems[:5]))
    return golden


def write_golden_set(out: Path, golden: GoldenSet, images: Mapping[str, np.ndarray]) -> Path:
    """Write golden.json and the frames to `out`, replacing what was there.

    Built in a sibling temporary folder and checked by reading it back, then swapped in:
    a failure leaves the previous golden set untouched.
    """
    from PIL import Image

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-new-"))
    try:
        for item in golden.items:
            target = staging / item.image
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[item.image]).save(target, format="PNG", optimize=True)
        document = {"version": FORMAT_VERSION, **asdict(golden)}
        (staging / GOLDEN_JSON).write_text(_dumps(document))
        load_golden_set(staging)
        if out.exists():
            retired = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-old-"))
            os.replace(out, retired / out.name)
            os.replace(staging, out)
            shutil.rmtree(retired)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _dumps(document: dict[str, Any]) -> str:
    """Indented JSON with lists of numbers and strings on one line, for readable diffs.

    Only whitespace with a line break is touched: JSON strings never hold a raw one.
    """
    text = json.dumps(document, indent=1)
    one_line = re.compile(r"\[\n[^\[\]{}]*\n\s*\]")
    flat = one_line.sub(lambda m: re.sub(r"\n\s*", "", re.sub(r",\n\s*", ", ", m.group())), text)
    return flat + "\n"


def _inconsistencies(golden: GoldenSet, directory: Path) -> list[str]:
    """What the types alone do not catch: duplicates, unordered boxes, missing frames."""
    problems = []
    keys = [item.key for item in golden.items]
    problems += [f"item {k} appears twice" for k in sorted({k for k in keys if keys.count(k) > 1})]
    episodes = {e.episode_index for e in golden.episodes}
    for item in golden.items:
        if item.episode_index not in episodes:
            problems.append(f"item {item.key}: episode {item.episode_index} is not listed")
        if not (directory / item.image).is_file():
            problems.append(f"item {item.key}: frame {item.image} is missing")
        for ref in item.detections:
            x0, y0, x1, y1 = ref.box
            if not (x0 < x1 and y0 < y1) or not ref.labels:
                problems.append(f"item {item.key}: reference {ref.name!r} box or labels invalid")
    return problems


def _parse(kind: Any, value: Any, where: str) -> Any:
    """`value` (parsed JSON) as `kind`: a dataclass, tuple, dict, or scalar type."""
    if is_dataclass(kind):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        hints = typing.get_type_hints(kind)
        names = [f.name for f in fields(kind)]
        missing = [n for n in names if n not in value]
        extra = [n for n in value if n not in names]
        if missing or extra:
            raise ValueError(f"{where}: missing fields {missing}, unknown fields {extra}")
        return kind(**{n: _parse(hints[n], value[n], f"{where}.{n}") for n in names})
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        if args[-1] is Ellipsis:
            return tuple(_parse(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(
            _parse(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        return dict(value)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(kind, type) and isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise ValueError(f"{where}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
