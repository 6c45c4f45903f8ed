"""Readers for LeRobot datasets, v3.0 (many episodes per file) and v2.1 (one file each).

Both produce `EpisodeRef`s; everything downstream is format-blind. A reader validates
what is dataset-wide (info.json, path templates) when it opens, and what belongs to one
episode only when that episode is read, so one damaged episode fails alone.

A layout override (`layout.py`, `enrich-layout.yaml` beside the dataset) changes the path
templates and renames features: the reader then speaks LeRobot names (cameras, the columns
`read_frames` returns) while finding the files under the names they really have.

Per-episode problems found while listing (a file that is a symlink out of the root, a row
range past its data file) do not stop the listing: they are kept on the episode's ref
(`EpisodeRef.problem`) and raised when that episode is read (`read_frames`), so only its
own partition fails. A missing column of the episode metadata is dataset-wide.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.lerobot.layout import LAYOUT_FILE, layout_path, resolve
from enrich_assets.datasets.video import VideoSlice
from enrich_assets.infra.files import stat_signature

# columns every v3.0 `meta/episodes` file must have (plus the videos/<camera>/ ones)
V3_EPISODE_COLUMNS = (
    "episode_index",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)
V3_VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp")
# the files LeRobot rewrites whenever it appends episodes
META_GLOBS = (
    "meta/info.json",
    "meta/episodes.jsonl",
    "meta/episodes_stats.jsonl",
    "meta/episodes/*/*.parquet",
    LAYOUT_FILE,  # an override changes where the files are and what they are called
)


def is_lerobot_root(location: str) -> bool:
    return (Path(location) / "meta" / "info.json").is_file()


def metadata_signature(root: Path) -> str:
    """Changes whenever LeRobot appends episodes (it rewrites these files), without reading them."""
    return stat_signature(root, [p for pattern in META_GLOBS for p in root.glob(pattern)])


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


def _escape(root: Path, relative: str, episode_index: int) -> EpisodeError | None:
    """Why `root/relative` (one episode's file) is outside the root, judged on that path:
    a symlink (the first one on the way that leads out) or a path that escapes as written."""
    real_root = root.resolve()
    here = root
    for part in Path(relative).parts:
        here = here / part
        if here.is_symlink():
            target = here.resolve()
            if not target.is_relative_to(real_root):
                return EpisodeError(
                    here,
                    f"episode {episode_index}: is a symlink to {target}, outside the dataset "
                    f"root {root}",
                )
    if not (root / relative).resolve().is_relative_to(real_root):
        return EpisodeError(
            root / relative, f"episode {episode_index}: path escapes the dataset root {root}"
        )
    return None


def _canonical(value: Any) -> Any:  # noqa: ANN401 - JSON-able form of a metadata value
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if hasattr(value, "tolist"):
        return _canonical(value.tolist())
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def episode_signature(row: dict, own_files: list[Path]) -> str:
    """A cheap content signature of one episode, to tell a re-recording under the same index.

    It hashes the episode's metadata row (length, tasks, data-file row range, video slice
    positions, and the per-episode stats LeRobot computes from the frames themselves) and the
    sizes of the files that belong to this episode alone (v2.1: its data and video files).
    Deliberately left out: modification times (a copy, rsync or restore changes them without
    changing content) and the sizes of files shared by several episodes (v3.0 data/video
    files grow whenever any episode is appended, and the language writeback rewrites data
    files). Nothing is decoded: one metadata row and a stat per own file.
    """
    digest = hashlib.sha256(json.dumps(_canonical(row), sort_keys=True).encode())
    for path in own_files:
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        digest.update(f"\n{path.name}:{size}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ParquetRows:
    """One episode's rows of a LeRobot data file (a `FrameTable`)."""

    data_file: Path
    # rows of `data_file` that belong to this episode (global `index` range for v3.0)
    row_range: tuple[int, int] | None
    episode_index: int
    length: int
    # LeRobot name -> the file's own name, from a layout override (`enrich-layout.yaml`)
    columns: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def location(self) -> str:
        return str(self.data_file)

    def read(self, columns: Sequence[str]) -> pa.Table:
        """The episode's rows of its data file, checked against what the metadata promised;
        columns under their LeRobot names whatever the file calls them."""
        path = self.data_file
        if not path.is_file():
            raise EpisodeError(path, f"data file of episode {self.episode_index} is missing")
        if self.length <= 0:
            raise EpisodeError(
                path, f"episode {self.episode_index} has zero length in the metadata"
            )
        try:
            schema = pq.read_schema(path)
            names = {self.columns.get(c, c): c for c in dict.fromkeys(("frame_index", *columns))}
            wanted = [c for c in names if c in schema.names]
            episode_column = self.columns.get("episode_index", "episode_index")
            table = pq.read_table(
                path, columns=wanted, filters=[(episode_column, "=", self.episode_index)]
            ).rename_columns([names[c] for c in wanted])
        except (pa.ArrowInvalid, OSError) as exc:
            raise EpisodeError(path, f"unreadable parquet ({exc})") from exc
        if table.num_rows != self.length:
            raise EpisodeError(
                path,
                f"episode {self.episode_index} should have {self.length} rows (metadata) but "
                f"the file holds {table.num_rows}: the episode row points past its data file",
            )
        return table.sort_by("frame_index")


class LeRobotReader:
    """A LeRobot dataset on disk; `version` is 'v3.0' or 'v2.1'."""

    format = "lerobot"

    def __init__(self, root: Path, dataset_id: str, layout: Path | None = None) -> None:
        self.root = root
        self.location = str(root)
        self.dataset_id = dataset_id
        self.layout = resolve(read_info(root), layout_path(root, layout))
        self.info = self.layout.info
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
        self._row_counts: dict[Path, int | EpisodeError] = {}
        self._offsets: dict[Path, int] | None = None

    def _check_templates(self) -> None:
        probe = {"chunk_index": 0, "file_index": 0, "episode_chunk": 0, "episode_index": 0}
        for name in ("data_path", "video_path"):
            template = self.info.get(name)
            if template is None:
                continue
            try:
                relative = template.format(
                    video_key=self.on_disk(self.cameras[0]) if self.cameras else "", **probe
                )
            except (KeyError, IndexError, ValueError) as exc:
                raise DatasetError(
                    self.root / "meta/info.json", f"bad {name} template {template!r}"
                ) from exc
            _inside(self.root, relative, name)

    def on_disk(self, name: str) -> str:
        """The name the files use for a LeRobot feature name (they differ under an override)."""
        return self.layout.on_disk.get(name, name)

    def episodes(self) -> list[EpisodeRef]:
        rows = self._episode_rows()
        return [self._ref(row) for row in rows]

    def _episode_rows(self) -> list[dict]:
        """Every episode's metadata row; v3.0 keeps its `stats/` columns apart, under
        the `_stats` key, for the signature only."""
        if self.version.startswith("v3"):
            files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
            if not files:
                raise DatasetError(self.root / "meta/episodes", "no episode metadata parquet files")
            required = [
                *V3_EPISODE_COLUMNS,
                *(f"videos/{self.on_disk(c)}/{k}" for c in self.cameras for k in V3_VIDEO_COLUMNS),
            ]
            rows: list[dict] = []
            for f in files:
                try:
                    table = pq.read_table(f)
                except (pa.ArrowInvalid, OSError) as exc:
                    raise DatasetError(f, f"unreadable parquet ({exc})") from exc
                missing = [c for c in required if c not in table.column_names]
                if missing:
                    raise DatasetError(
                        f, f"lacks the column {missing[0]!r} (LeRobot v3.0 episode metadata)"
                    )
                keep = [c for c in table.column_names if not c.startswith("stats/")]
                stats = [c for c in table.column_names if c.startswith("stats/")]
                for row, stat in zip(
                    table.select(keep).to_pylist(), table.select(stats).to_pylist(), strict=True
                ):
                    rows.append({**row, "_stats": stat})
            return rows
        path = self.root / "meta" / "episodes.jsonl"
        if not path.is_file():
            raise DatasetError(path, "missing (v2.1 datasets list episodes there)")
        try:
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise DatasetError(path, f"malformed JSON line ({exc})") from exc
        for number, row in enumerate(lines, 1):
            if not isinstance(row, dict) or "episode_index" not in row:
                raise DatasetError(path, f"line {number} lacks the key 'episode_index'")
        stats = self._v21_stats()
        return [{**row, "_stats": stats.get(row["episode_index"])} for row in lines]

    def _v21_stats(self) -> dict[Any, Any]:
        """episodes_stats.jsonl by episode index, for the signature; absent or bad: none."""
        path = self.root / "meta" / "episodes_stats.jsonl"
        try:
            rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            return {r["episode_index"]: r.get("stats") for r in rows}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _rows_in(self, path: Path) -> int | EpisodeError:
        """Row count of a data file from its parquet footer, read once per file."""
        if path not in self._row_counts:
            try:
                self._row_counts[path] = pq.read_metadata(path).num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                self._row_counts[path] = EpisodeError(path, f"unreadable parquet ({exc})")
        return self._row_counts[path]

    def _global_offset(self, path: Path) -> int:
        """Global `index` of the first row of a v3.0 data file: the data files in (chunk,
        file) order, concatenated, as LeRobot loads them (computed once per reader)."""
        if self._offsets is None:
            self._offsets, offset = {}, 0
            pattern = re.sub(r"\{[^}]*\}", "*", self.info["data_path"])  # every data file
            for other in sorted(self.root.glob(pattern)):
                self._offsets[other.resolve()] = offset
                count = self._rows_in(other.resolve())
                offset += count if isinstance(count, int) else 0
        return self._offsets.get(path, 0)

    def _range_problem(
        self, index: int, data_file: Path, row_range: tuple[int, int] | None, length: int
    ) -> EpisodeError | None:
        if not data_file.is_file():
            return None  # read_frames names the missing file
        count = self._rows_in(data_file)
        if isinstance(count, EpisodeError):
            return count
        shown = _relative(self.root, data_file)
        if row_range is None:  # v2.1: the file holds this episode only
            if length > count:
                return EpisodeError(
                    self.root,
                    f"episode {index}: {length} rows (metadata length) point past {shown} "
                    f"({count} rows)",
                )
            return None
        start, stop = row_range
        offset = self._global_offset(data_file)
        if not (offset <= start < stop <= offset + count):
            where = f"{count} rows" if offset == 0 else f"{count} rows, {offset}..{offset + count}"
            return EpisodeError(
                self.root, f"episode {index}: rows {start}..{stop} point past {shown} ({where})"
            )
        return None

    def _path(
        self, relative: str, index: int, problems: list[EpisodeError]
    ) -> Path:  # the episode's file, resolved; a problem with it is recorded, not raised
        problem = _escape(self.root, relative, index)
        if problem is not None:
            problems.append(problem)
            return self.root / relative
        return (self.root / relative).resolve()

    def _ref(self, row: dict) -> EpisodeRef:
        index = int(row["episode_index"])
        tasks = row.get("tasks") or [""]
        length = int(row.get("length", 0))
        problems: list[EpisodeError] = []
        common = dict(
            dataset_id=self.dataset_id,
            episode_index=index,
            length=length,
            fps=self.fps,
            task=str(tasks[0]),
            resolution={c: tuple(self.info["features"][c]["shape"][:2]) for c in self.cameras},
        )
        if self.version.startswith("v3"):
            loc = {"chunk_index": row["data/chunk_index"], "file_index": row["data/file_index"]}
            videos = {
                cam: VideoSlice(
                    self._path(
                        self.info["video_path"].format(
                            video_key=self.on_disk(cam),
                            chunk_index=row[f"videos/{self.on_disk(cam)}/chunk_index"],
                            file_index=row[f"videos/{self.on_disk(cam)}/file_index"],
                        ),
                        index,
                        problems,
                    ),
                    float(row[f"videos/{self.on_disk(cam)}/from_timestamp"]),
                )
                for cam in self.cameras
            }
            data_file = self._path(self.info["data_path"].format(**loc), index, problems)
            row_range = (int(row["dataset_from_index"]), int(row["dataset_to_index"]))
            own_files: list[Path] = []  # v3.0 files are shared: their sizes say nothing
        else:
            chunk = index // int(self.info.get("chunks_size", 1000))
            loc = {"episode_chunk": chunk, "episode_index": index}
            videos = {
                cam: VideoSlice(
                    self._path(
                        self.info["video_path"].format(video_key=self.on_disk(cam), **loc),
                        index,
                        problems,
                    )
                )
                for cam in self.cameras
            }
            data_file = self._path(self.info["data_path"].format(**loc), index, problems)
            row_range = None
            own_files = [data_file, *(videos[c].path for c in self.cameras)]
        if not problems:
            found = self._range_problem(index, data_file, row_range, length)
            problems += [found] if found else []
        return EpisodeRef(
            table=ParquetRows(data_file, row_range, index, length, dict(self.layout.on_disk)),
            frames=dict(videos),
            signature=episode_signature(row, own_files),
            problem=problems[0] if problems else None,
            **common,
        )

    def signatures(self) -> dict[int, str]:
        """Episode index -> content signature (`episode_signature`), for change detection."""
        return {e.episode_index: e.signature for e in self.episodes()}


def _relative(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)


def open_lerobot(root: Path, dataset_id: str, layout: Path | None = None) -> LeRobotReader:
    """The dataset at `root`, read through the layout override `layout`, else through the
    `enrich-layout.yaml` beside it, if any."""
    if not root.is_dir():
        raise DatasetError(root, "dataset root is not a directory")
    return LeRobotReader(root, dataset_id, layout)
