"""Where an HDF5 file keeps its episodes, cameras, state, action, task and fps.

Three layouts are recognised from the file itself (`detect_layout`):

- robomimic: `data/demo_N/` with `obs/<name>_image` frames, `actions`, `states`; the `data`
  group's `env_args` JSON names the environment (the task) and `env_kwargs.control_freq`
  the rate (default `ROBOMIMIC_FPS`);
- LIBERO: the same `data/demo_N/` shape with `obs/agentview_rgb`, `obs/eye_in_hand_rgb`,
  `obs/joint_states` + `obs/gripper_states` (the state); the instruction from the
  `problem_info` JSON attribute (`language_instruction`), else a `language_instruction`
  attribute, else the file name;
- ALOHA / ACT: one episode per file, `/observations/images/<cam>` (raw or JPEG per frame,
  root attribute `compress`), `/observations/qpos`, `/action`; fps `ALOHA_FPS`.

Any other layout is declared in a small YAML file (`DeclaredLayout`), found beside the data:
`<file>.layout.yaml` for one file, `layout.yaml` in a folder of files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from enrich_assets.datasets.errors import DatasetError

ROBOMIMIC_FPS = 20.0  # robosuite's default control frequency; robomimic files rarely say
LIBERO_FPS = 20.0
ALOHA_FPS = 50.0
LAYOUT_FILE = "layout.yaml"  # in a folder of files; one file: `<file name>.layout.yaml`


@dataclass(frozen=True)
class Layout:
    """How to read one file: resolved to concrete paths, the same for all its episodes."""

    name: str  # robomimic, libero, aloha, declared
    episodes: list[str]  # group paths, one per episode, in natural order ("/" = whole file)
    cameras: dict[str, str]  # camera name -> dataset path relative to the episode group
    state: list[str] = field(default_factory=list)  # concatenated in this order
    action: str | None = None
    task: str = ""
    fps: float = ROBOMIMIC_FPS
    length_attr: str | None = None  # an episode group attribute that holds its length


class DeclaredLayout(BaseModel):
    """The YAML mapping for a layout this tool does not know (every key is checked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    episodes: str = "/"  # a glob of group paths ("episodes/*"), or "/" (the file is one)
    cameras: dict[str, str]  # camera name -> dataset path relative to the episode group
    state: list[str] = []
    action: str | None = None
    task: str = ""  # literal text, or "attr:<name>" (an attribute of the file's root)
    fps: float


def natural_key(text: str) -> list[Any]:
    """demo_2 before demo_10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def layout_file(path: Path) -> Path:
    """Where a declared layout for `path` (a file, or a folder of files) would be."""
    return path / LAYOUT_FILE if path.is_dir() else path.with_name(path.name + ".layout.yaml")


def load_declared(path: Path) -> DeclaredLayout:
    try:
        return DeclaredLayout(**(yaml.safe_load(path.read_text()) or {}))
    except (yaml.YAMLError, OSError, TypeError) as exc:
        raise DatasetError(path, f"unreadable layout file ({exc})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(file)"
        raise DatasetError(path, f"layout key {where}: {first['msg']}") from None


def _json_attr(attrs: h5py.AttributeManager, name: str) -> dict:
    value = attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode()
    try:
        loaded = json.loads(value) if isinstance(value, str) else {}
    except json.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.item())
    return "" if value is None else str(value)


def _is_frames(node: object) -> bool:
    return isinstance(node, h5py.Dataset) and (
        (node.ndim == 4 and node.shape[-1] == 3) or node.dtype.kind in "OS" or node.ndim == 2
    )


def _demo_layout(f: h5py.File, path: Path) -> Layout:
    data = f["data"]
    demos = sorted((k for k in data if isinstance(data[k], h5py.Group)), key=natural_key)
    if not demos:
        raise DatasetError(path, "robomimic/LIBERO layout: the data group holds no demo_N groups")
    obs = data[demos[0]].get("obs")
    names = sorted(obs) if isinstance(obs, h5py.Group) else []
    cameras = {
        n: f"obs/{n}"
        for n in names
        if n.endswith(("_image", "_rgb")) and isinstance(obs[n], h5py.Dataset)
    }
    problem = _json_attr(data.attrs, "problem_info") or _json_attr(f.attrs, "problem_info")
    env = _json_attr(data.attrs, "env_args")
    libero = bool(problem) or any(n.endswith("_rgb") for n in names)
    freq = env.get("env_kwargs", {}).get("control_freq") if isinstance(env, dict) else None
    if libero:
        task = (
            _text(problem.get("language_instruction"))
            or _text(data.attrs.get("language_instruction") or f.attrs.get("language_instruction"))
            or path.stem.removesuffix("_demo").replace("_", " ")
        )
        state = [f"obs/{n}" for n in ("joint_states", "gripper_states") if n in names]
        return Layout(
            "libero",
            [f"data/{d}" for d in demos],
            cameras,
            state or ["states"],
            "actions",
            task,
            float(freq or LIBERO_FPS),
            "num_samples",
        )
    task = _text(env.get("env_name")) or path.stem
    return Layout(
        "robomimic",
        [f"data/{d}" for d in demos],
        cameras,
        ["states"],
        "actions",
        task,
        float(freq or ROBOMIMIC_FPS),
        "num_samples",
    )


def _aloha_layout(f: h5py.File, path: Path) -> Layout:
    images = f["observations/images"]
    cameras = {c: f"observations/images/{c}" for c in sorted(images) if _is_frames(images[c])}
    return Layout(
        "aloha",
        ["/"],
        cameras,
        ["observations/qpos"],
        "action",
        _text(f.attrs.get("task")) or path.parent.name.replace("_", " "),
        ALOHA_FPS,
    )


def detect_layout(f: h5py.File, path: Path, declared: DeclaredLayout | None) -> Layout:
    """The layout of an open file: the declared one if given, else recognised."""
    if declared is not None:
        return _declared_layout(f, path, declared)
    if isinstance(f.get("data"), h5py.Group):
        return _demo_layout(f, path)
    if isinstance(f.get("observations/images"), h5py.Group):
        return _aloha_layout(f, path)
    raise DatasetError(
        path,
        "unknown HDF5 layout (not robomimic data/demo_N, LIBERO or ALOHA "
        f"/observations/images); declare it in {layout_file(path).name} (see README)",
    )


def _declared_layout(f: h5py.File, path: Path, declared: DeclaredLayout) -> Layout:
    if declared.episodes in ("/", ""):
        groups = ["/"]
    else:
        found: list[str] = []
        f.visit(lambda name: found.append(name) if isinstance(f[name], h5py.Group) else None)
        pattern = declared.episodes.strip("/")
        groups = sorted(
            (g for g in found if g.count("/") == pattern.count("/") and fnmatchcase(g, pattern)),
            key=natural_key,
        )
    task = declared.task
    if task.startswith("attr:"):
        task = _text(f.attrs.get(task.removeprefix("attr:")))
    return Layout(
        "declared",
        groups,
        dict(declared.cameras),
        list(declared.state),
        declared.action,
        task,
        declared.fps,
    )
