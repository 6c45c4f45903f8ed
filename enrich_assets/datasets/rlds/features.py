"""What a TFDS builder's `features.json` says about its steps, and the optional
`enrich-rlds.yaml` beside it.

TFDS serializes an RLDS episode as one `tf.train.Example` whose keys are the feature paths
joined by `/`; a `Dataset` (or `Sequence`) feature such as `steps` adds no level of its own,
each of its leaves holds all steps' values back to back: `steps/observation/image` one
encoded image per step, `steps/observation/state` T*7 floats, `steps/is_first` T int64s
(booleans are int64), `steps/language_instruction` T strings.

From those leaves (`layout`):
- cameras: every uint8 `Image` under `steps/observation/`, named by its path below that
  (`image`, `wrist_image`); depth images (uint16) are not cameras;
- state: `observation/state` when it is a fixed-shape tensor (or the `state` setting);
- action: `action` itself when it is a tensor, else every fixed-shape tensor below it (a
  nested dict like bridge's), flattened in sorted key order (`open_gripper`,
  `rotation_delta`, `terminate_episode`, `world_vector`; or the `action` setting's order);
  booleans become 0/1;
- task: `language_instruction`, else `observation/natural_language_instruction` (the
  first step's text).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from enrich_assets.datasets.errors import DatasetError

SETTINGS_FILE = "enrich-rlds.yaml"  # in the builder directory
DEFAULT_FPS = 10.0  # RLDS records no rate; most Open X-Embodiment datasets run at 3-15 Hz
TASK_KEYS = ("language_instruction", "observation/natural_language_instruction")


class RLDSSettings(BaseModel):
    """`enrich-rlds.yaml`: every key is checked; all are optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fps: float = Field(DEFAULT_FPS, gt=0)  # the steps' rate: timestamps are step / fps
    splits: list[str] | None = None  # read only these splits (default: all, in info order)
    state: list[str] | None = None  # step keys concatenated into observation.state
    action: list[str] | None = None  # step keys concatenated into action, in this order


def load_settings(root: Path) -> RLDSSettings:
    path = root / SETTINGS_FILE
    if not path.is_file():
        return RLDSSettings()
    try:
        return RLDSSettings(**(yaml.safe_load(path.read_text()) or {}))
    except (yaml.YAMLError, TypeError) as exc:
        raise DatasetError(path, f"not a YAML mapping ({exc})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DatasetError(path, f"{where}: {first['msg']}") from exc


@dataclass(frozen=True)
class Leaf:
    """One serialized key of a step."""

    key: str  # below `steps/`: "observation/image", "action/world_vector"
    kind: str  # image, tensor, text, other
    dtype: str = ""
    shape: tuple[int, ...] = ()  # -1 where unknown
    encoding: str = ""  # images: jpeg/png; tensors: none (or bytes/zlib)

    @property
    def size(self) -> int:
        """Values per step; -1 when the shape is not fixed."""
        return -1 if any(d < 0 for d in self.shape) else math.prod(self.shape)


@dataclass(frozen=True)
class Layout:
    cameras: dict[str, Leaf]  # camera name -> its image leaf
    state: list[Leaf]
    action: list[Leaf]
    task: str | None  # the step key holding the instruction
    count: str  # the step key whose values count the steps


def _leaf(key: str, node: dict[str, Any]) -> Leaf:
    for kind in ("image", "tensor"):
        if kind in node:
            spec = node[kind]
            dims = tuple(int(d) for d in spec.get("shape", {}).get("dimensions", []))
            encoding = spec.get("encodingFormat", spec.get("encoding", "none"))
            return Leaf(key, kind, spec.get("dtype", ""), dims, encoding)
    return Leaf(key, "text" if "text" in node else "other")


def _walk(node: dict[str, Any], path: str, in_steps: bool, out: list[Leaf]) -> None:
    if "featuresDict" in node:
        for name, child in node["featuresDict"].get("features", {}).items():
            _walk(child, f"{path}/{name}" if path else name, in_steps, out)
    elif "sequence" in node:  # tfds.features.Dataset / Sequence: no key level of its own
        _walk(node["sequence"]["feature"], path, path == "steps" or in_steps, out)
    elif in_steps:
        out.append(_leaf(path.removeprefix("steps/"), node))


def step_leaves(features_json: Path) -> list[Leaf]:
    """The leaves under `steps`, as TFDS serializes them."""
    try:
        root = json.loads(features_json.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(features_json, f"unreadable ({exc})") from exc
    leaves: list[Leaf] = []
    _walk(root, "", False, leaves)
    if not leaves:
        raise DatasetError(features_json, "declares no `steps` Dataset feature (not RLDS)")
    return leaves


def _pick(leaves: dict[str, Leaf], keys: list[str], what: str, where: Path) -> list[Leaf]:
    out = []
    for key in keys:
        leaf = leaves.get(key)
        if leaf is None or leaf.kind != "tensor" or leaf.encoding != "none" or leaf.size < 0:
            raise DatasetError(
                where, f"{what} key {key!r} is not a fixed-shape tensor of the steps"
            )
        out.append(leaf)
    return out


def layout(features_json: Path, settings: RLDSSettings, settings_path: Path) -> Layout:
    leaves = {leaf.key: leaf for leaf in step_leaves(features_json)}
    cameras = {
        key.removeprefix("observation/"): leaf
        for key, leaf in sorted(leaves.items())
        if leaf.kind == "image" and leaf.dtype == "uint8" and key.startswith("observation/")
    }
    where = settings_path if settings_path.is_file() else features_json
    if settings.state is not None:
        state = _pick(leaves, settings.state, "state", where)
    else:
        found = leaves.get("observation/state")
        state = [found] if found and found.kind == "tensor" and found.size >= 0 else []
    if settings.action is not None:
        action = _pick(leaves, settings.action, "action", where)
    else:
        nested = sorted(k for k, v in leaves.items() if k.startswith("action/"))
        keys = ["action"] if "action" in leaves else nested
        action = [leaves[k] for k in keys if leaves[k].kind == "tensor" and leaves[k].size >= 0]
    task = next((k for k in TASK_KEYS if leaves.get(k, Leaf("", "")).kind == "text"), None)
    count = "is_first" if "is_first" in leaves else sorted(leaves)[0]
    return Layout(cameras, state, action, task, count)
