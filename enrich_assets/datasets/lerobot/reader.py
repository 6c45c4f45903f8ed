"""Readers for LeRobot datasets, v3.0 (many episodes per file) and v2.1 (one file each).

Both produce `EpisodeRef`s; everything downstream is format-blind. A reader validates
what is dataset-wide (info.json, path templates) when it opens, and what belongs to one
episode only when that episode is read, so one damaged episode fails alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from enrich_assets.datasets.episode import EpisodeRef, VideoSlice
from enrich_assets.datasets.errors import DatasetError, EpisodeError

FRAME_COLUMNS = ("timestamp", "frame_index", "episode_index", "observation.state", "action")


def read_info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    if not path.is_file():
        raise DatasetError(path, "missing: not a LeRobot dataset root (expected meta/info.json)")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"malformed JSON ({exc})") from exc
    for key in ("codebase_version", "fps", "features", "data_path"):
        if key not in info:
            raise DatasetError(path, f"lacks the required key {key!r}")
    return info


def _inside(root: Path, relative: str, template_name: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DatasetError(
            root / "meta" / "info.json", f"{template_name} escapes the dataset root: {relative}"
        )
    return path


class LeRobotReader:
    """A LeRobot dataset on disk; `version` is 'v3.0' or 'v2.1'."""

    def __init__(self, root: Path, dataset_id: str) -> None:
        self.root = root
        self.dataset_id = dataset_id
        self.info = read_info(root)
        self.version = str(self.info["codebase_version"])
        if not self.version.startswith(("v2", "v3")):
            raise DatasetError(
                root / "meta/info.json", f"unsupported codebase_version {self.version}"
            )
        self.fps = float(self.info["fps"])
        self.cameras = sorted(
            k for k, f in self.info["features"].items() if f.get("dtype") == "video"
        )
        if self.cameras and "video_path" not in self.info:
            raise DatasetError(root / "meta/info.json", "has video features but no video_path")
        self._check_templates()

    def _check_templates(self) -> None:
        probe = {"chunk_index": 0, "file_index": 0, "episode_chunk": 0, "episode_index": 0}
        for name in ("data_path", "video_path"):
            template = self.info.get(name)
            if template is None:
                continue
            try:
                relative = template.format(
                    video_key=self.cameras[0] if self.cameras else "", **probe
                )
            except (KeyError, IndexError, ValueError) as exc:
                raise DatasetError(
                    self.root / "meta/info.json", f"bad {name} template {template!r}"
                ) from exc
            _inside(self.root, relative, name)

    def episodes(self) -> list[EpisodeRef]:
        rows = self._episode_rows()
        return [self._ref(row) for row in rows]

    def _episode_rows(self) -> list[dict]:
        if self.version.startswith("v3"):
            files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
            if not files:
                raise DatasetError(self.root / "meta/episodes", "no episode metadata parquet files")
            rows: list[dict] = []
            for f in files:
                try:
                    table = pq.read_table(f)
                except (pa.ArrowInvalid, OSError) as exc:
                    raise DatasetError(f, f"unreadable parquet ({exc})") from exc
                keep = [c for c in table.column_names if not c.startswith("stats/")]
                rows.extend(table.select(keep).to_pylist())
            return rows
        path = self.root / "meta" / "episodes.jsonl"
        if not path.is_file():
            raise DatasetError(path, "missing (v2.1 datasets list episodes there)")
        try:
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise DatasetError(path, f"malformed JSON line ({exc})") from exc

    def _ref(self, row: dict) -> EpisodeRef:
        index = int(row["episode_index"])
        tasks = row.get("tasks") or [""]
        common = dict(
            dataset_id=self.dataset_id,
            episode_index=index,
            length=int(row.get("length", 0)),
            fps=self.fps,
            task=str(tasks[0]),
            resolution={c: tuple(self.info["features"][c]["shape"][:2]) for c in self.cameras},
        )
        if self.version.startswith("v3"):
            loc = {"chunk_index": row["data/chunk_index"], "file_index": row["data/file_index"]}
            videos = {
                cam: VideoSlice(
                    _inside(
                        self.root,
                        self.info["video_path"].format(
                            video_key=cam,
                            chunk_index=row[f"videos/{cam}/chunk_index"],
                            file_index=row[f"videos/{cam}/file_index"],
                        ),
                        "video_path",
                    ),
                    float(row[f"videos/{cam}/from_timestamp"]),
                )
                for cam in self.cameras
            }
            return EpisodeRef(
                data_file=_inside(self.root, self.info["data_path"].format(**loc), "data_path"),
                row_range=(int(row["dataset_from_index"]), int(row["dataset_to_index"])),
                videos=videos,
                **common,
            )
        chunk = index // int(self.info.get("chunks_size", 1000))
        loc = {"episode_chunk": chunk, "episode_index": index}
        videos = {
            cam: VideoSlice(
                _inside(
                    self.root, self.info["video_path"].format(video_key=cam, **loc), "video_path"
                )
            )
            for cam in self.cameras
        }
        return EpisodeRef(
            data_file=_inside(self.root, self.info["data_path"].format(**loc), "data_path"),
            row_range=None,
            videos=videos,
            **common,
        )


def read_frames(ref: EpisodeRef, columns: tuple[str, ...] = FRAME_COLUMNS) -> pa.Table:
    """The episode's rows of its data file, checked against what the metadata promised."""
    path = ref.data_file
    if not path.is_file():
        raise EpisodeError(path, f"data file of episode {ref.episode_index} is missing")
    if ref.length <= 0:
        raise EpisodeError(path, f"episode {ref.episode_index} has zero length in the metadata")
    try:
        schema = pq.read_schema(path)
        wanted = [c for c in dict.fromkeys(("frame_index", *columns)) if c in schema.names]
        table = pq.read_table(
            path, columns=wanted, filters=[("episode_index", "=", ref.episode_index)]
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise EpisodeError(path, f"unreadable parquet ({exc})") from exc
    if table.num_rows != ref.length:
        raise EpisodeError(
            path,
            f"episode {ref.episode_index} should have {ref.length} rows (metadata) but the file "
            f"holds {table.num_rows}: the episode row points past its data file",
        )
    return table.sort_by("frame_index")


def open_lerobot(root: Path, dataset_id: str) -> LeRobotReader:
    if not root.is_dir():
        raise DatasetError(root, "dataset root is not a directory")
    return LeRobotReader(root, dataset_id)
