"""The layout override: read a LeRobot dataset whose files or names differ from what its
`meta/info.json` says, without rewriting the dataset.

A YAML file beside the dataset (`<root>/enrich-layout.yaml`) or given explicitly:

    video_path: "video/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    data_path: "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    features:            # name in the dataset -> LeRobot name
      image: observation.images.front
      state: observation.state
      actions: action
    codecs:              # camera (LeRobot name) -> the codec its stream really has
      observation.images.front: h264

Every key is optional; an unknown key is an error naming the file and the key.
`enrich-assets doctor` says which lines a damaged dataset needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from enrich_assets.datasets.errors import DatasetError

LAYOUT_FILE = "enrich-layout.yaml"


class Layout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    video_path: str | None = None
    data_path: str | None = None
    features: dict[str, str] = {}
    codecs: dict[str, str] = {}


@dataclass(frozen=True)
class Resolved:
    """info.json as the override makes it, and the names the files really use."""

    info: dict
    source: Path | None  # the override file, if one was used
    on_disk: dict[str, str] = field(default_factory=dict)  # LeRobot name -> name in the files
    codecs: dict[str, str] = field(default_factory=dict)  # camera -> codec label override


def load_layout(path: Path) -> Layout:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise DatasetError(path, f"unreadable layout file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise DatasetError(path, f"malformed YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict):
        raise DatasetError(path, "the layout file must be a mapping of keys")
    try:
        return Layout(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise DatasetError(
                f"{path}:{key}", f"unknown key (known: {', '.join(Layout.model_fields)})"
            ) from None
        raise DatasetError(f"{path}:{key}", err["msg"]) from None


def layout_path(root: Path, explicit: Path | None = None) -> Path | None:
    """The override to use: the explicit file, else the one beside the dataset, else none."""
    if explicit is not None:
        return explicit
    beside = root / LAYOUT_FILE
    return beside if beside.is_file() else None


def resolve(info: dict, path: Path | None) -> Resolved:
    """Apply the override at `path` (none: info.json as it is) to info.json."""
    if path is None:
        return Resolved(info, None)
    layout = load_layout(path)
    features = dict(info["features"])
    on_disk: dict[str, str] = {}
    for name, target in layout.features.items():
        if name not in info["features"]:
            raise DatasetError(f"{path}:features.{name}", "not a feature of meta/info.json")
        if (target in features and target not in layout.features) or target in on_disk:
            raise DatasetError(f"{path}:features.{name}", f"{target!r} is already a feature")
        on_disk[target] = name
    renamed = {on_disk_name: target for target, on_disk_name in on_disk.items()}
    features = {renamed.get(k, k): v for k, v in features.items()}
    cameras = {k for k, v in features.items() if v.get("dtype") == "video"}
    for camera in layout.codecs:
        if camera not in cameras:
            raise DatasetError(f"{path}:codecs.{camera}", "not a video feature (camera)")
    paths = {k: getattr(layout, k) for k in ("video_path", "data_path") if getattr(layout, k)}
    return Resolved({**info, **paths, "features": features}, path, on_disk, dict(layout.codecs))
