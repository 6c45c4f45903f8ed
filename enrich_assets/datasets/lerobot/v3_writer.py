"""Write episodes as a LeRobot v3.0 dataset, laid out the way lerobot itself writes one.

Layout (all paths relative to the dataset root):

- ``data/chunk-CCC/file-FFF.parquet``: one row per frame, many episodes per file;
- ``videos/<camera>/chunk-CCC/file-FFF.mp4``: AV1 (libsvtav1, yuv420p), many episodes
  back to back per file, each starting on a keyframe; an episode's frame ``i`` sits at
  ``from_timestamp + i / fps`` of its file;
- ``meta/info.json``, ``meta/stats.json``, ``meta/tasks.parquet`` (indexed by task string,
  as pandas writes it) and ``meta/episodes/chunk-000/file-000.parquet`` (one row per
  episode: file locations, index ranges, per-episode stats).

Episodes stream in one at a time, so a dataset of hundreds of episodes never sits in
memory. The whole dataset is built in a temporary sibling folder and renamed into place
when complete: a failed write leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
INDEX_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")


@dataclass(frozen=True)
class EpisodeData:
    """One episode: per-frame state and action, one task, frames per camera key."""

    task: str
    state: np.ndarray  # T x D float32
    action: np.ndarray  # T x A float32
    frames: Mapping[
        str, np.ndarray
    ]  # camera key (e.g. "observation.images.front") -> T x H x W x 3


@dataclass(frozen=True)
class FileLimits:
    """When a data or video file rolls over to the next one (lerobot's defaults).

    Sizes are checked before an episode is added, against the bytes already in the file
    plus the size of the previous episode (lerobot measures the new episode itself, which
    we cannot without encoding it twice). ``episodes_per_file`` adds a count limit.
    """

    data_files_size_in_mb: float = 100
    video_files_size_in_mb: float = 200
    chunks_size: int = 1000
    episodes_per_file: int | None = None


@dataclass(frozen=True)
class VideoSettings:
    """AV1 encoding as lerobot does it (g=2, crf=30); ``preset`` trades size for speed."""

    codec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    gop: int = 2
    crf: int = 30
    preset: int = 10


def write_lerobot_v3(root: Path, episodes: Iterable[EpisodeData], **options: Any) -> Path:
    """Write all `episodes` as a v3.0 dataset at `root` (which must be absent or empty).

    `options`: LeRobotV3Writer's (fps, state_names, action_names, robot_type, limits, video).
    """
    with LeRobotV3Writer(root, **options) as writer:
        for episode in episodes:
            writer.add_episode(episode)
    return Path(root)


def refuse_non_empty(root: Path) -> None:
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(
            f"{root}: already exists and is not an empty directory; refusing to overwrite"
        )


class LeRobotV3Writer:
    """Append episodes, then `close()` (or leave the `with` block) to publish the dataset."""

    def __init__(
        self,
        root: Path,
        *,
        fps: int,
        state_names: Sequence[str],
        action_names: Sequence[str],
        robot_type: str = "unknown",
        limits: FileLimits = FileLimits(),
        video: VideoSettings = VideoSettings(),
    ) -> None:
        self.root = Path(root)
        refuse_non_empty(self.root)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(dir=self.root.parent, prefix=f".{self.root.name}.tmp-"))
        self.fps = fps
        self.state_names = list(state_names)
        self.action_names = list(action_names)
        self.robot_type = robot_type
        self.limits = limits
        self.video = video
        self._tasks: dict[str, int] = {}
        self._episode_rows: list[dict] = []
        self._episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
        self._image_shapes: dict[str, tuple[int, int, int]] = {}
        self._data = _DataFiles(self._tmp, limits)
        self._videos: dict[str, _VideoFiles] = {}
        self._total_frames = 0

    def __enter__(self) -> LeRobotV3Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add_episode(self, episode: EpisodeData) -> int:
        """Write one episode's rows and frames; returns its episode_index."""
        episode_index = len(self._episode_rows)
        length = self._check(episode, episode_index)
        task_index = self._tasks.setdefault(episode.task, len(self._tasks))
        frame_index = np.arange(length, dtype=np.int64)
        columns = {
            "observation.state": np.asarray(episode.state, dtype=np.float32),
            "action": np.asarray(episode.action, dtype=np.float32),
            "timestamp": (frame_index / self.fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(length, episode_index, dtype=np.int64),
            "index": self._total_frames + frame_index,
            "task_index": np.full(length, task_index, dtype=np.int64),
        }
        row: dict = {"episode_index": episode_index}
        row.update(self._data.add(columns))
        row["dataset_from_index"] = self._total_frames
        row["dataset_to_index"] = self._total_frames + length
        stats = {key: feature_stats(columns[key]) for key in ("observation.state", "action")}
        for key in sorted(episode.frames):
            frames = episode.frames[key]
            if key not in self._videos:
                self._videos[key] = _VideoFiles(self._tmp, key, self.fps, self.limits, self.video)
            row.update(self._videos[key].add(frames))
            stats[key] = image_stats(frames)
        stats.update({key: feature_stats(columns[key]) for key in INDEX_FEATURES})
        row["tasks"] = [episode.task]
        row["length"] = length
        for key, feature in stats.items():
            for name, value in feature.items():
                row[f"stats/{key}/{name}"] = value.tolist()
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        self._episode_rows.append(row)
        self._episode_stats.append(stats)
        self._total_frames += length
        return episode_index

    def close(self, extra_files: Mapping[str, bytes] | None = None) -> Path:
        """Flush the open files, write meta/ and `extra_files` (relative path -> bytes),
        then move the dataset into place."""
        if not self._episode_rows:
            self.abort()
            raise ValueError(f"{self.root}: no episodes were added; nothing to write")
        self._data.close()
        for videos in self._videos.values():
            videos.close()
        self._write_meta()
        for rel, data in (extra_files or {}).items():
            path = self._tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        refuse_non_empty(self.root)
        if self.root.exists():
            self.root.rmdir()
        os.replace(self._tmp, self.root)
        return self.root

    def abort(self) -> None:
        for videos in self._videos.values():
            videos.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _check(self, episode: EpisodeData, episode_index: int) -> int:
        where = f"{self.root}: episode {episode_index}"
        state, action = np.asarray(episode.state), np.asarray(episode.action)
        length = len(state)
        if length == 0:
            raise ValueError(f"{where}: has no frames")
        if state.shape != (length, len(self.state_names)):
            raise ValueError(
                f"{where}: state shape {state.shape}, expected (T, {len(self.state_names)})"
            )
        if action.shape != (length, len(self.action_names)):
            raise ValueError(
                f"{where}: action shape {action.shape}, expected (T, {len(self.action_names)}) "
                f"with T = {length} state rows"
            )
        if episode_index > 0 and set(episode.frames) != set(self._image_shapes):
            raise ValueError(
                f"{where}: cameras {sorted(episode.frames)}, "
                f"earlier episodes have {sorted(self._image_shapes)}"
            )
        for key, frames in episode.frames.items():
            shape = self._image_shapes.setdefault(key, tuple(frames.shape[1:]))
            if frames.dtype != np.uint8 or frames.shape != (length, *shape) or shape[2] != 3:
                raise ValueError(
                    f"{where}: {key} frames are {frames.dtype} {frames.shape}, "
                    f"expected uint8 with shape {(length, *shape)}"
                )
            if shape[0] % 2 or shape[1] % 2:
                raise ValueError(
                    f"{where}: {key} is {shape[1]}x{shape[0]}; yuv420p needs even sizes"
                )
        return length

    def _write_meta(self) -> None:
        meta = self._tmp / "meta"
        (meta / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self._episode_rows), self._tmp / EPISODES_PATH)
        pq.write_table(tasks_table(list(self._tasks)), meta / "tasks.parquet")
        stats = aggregate_stats(self._episode_stats)
        stats_json = {k: {n: v.tolist() for n, v in s.items()} for k, s in stats.items()}
        (meta / "stats.json").write_text(json.dumps(stats_json, indent=4))
        (meta / "info.json").write_text(json.dumps(self._info(), indent=4))

    def _info(self) -> dict:
        features: dict[str, dict] = {
            "observation.state": {
                "dtype": "float32",
                "shape": [len(self.state_names)],
                "names": self.state_names,
            },
            "action": {
                "dtype": "float32",
                "shape": [len(self.action_names)],
                "names": self.action_names,
            },
        }
        for key in sorted(self._image_shapes):
            height, width, channels = self._image_shapes[key]
            features[key] = {
                "dtype": "video",
                "shape": [height, width, channels],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": height,
                    "video.width": width,
                    "video.codec": "av1",
                    "video.pix_fmt": self.video.pix_fmt,
                    "video.is_depth_map": False,
                    "video.fps": self.fps,
                    "video.channels": channels,
                    "has_audio": False,
                },
            }
        features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
        for name in INDEX_FEATURES[1:]:
            features[name] = {"dtype": "int64", "shape": [1], "names": None}
        episodes = len(self._episode_rows)
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": episodes,
            "total_frames": self._total_frames,
            "total_tasks": len(self._tasks),
            "chunks_size": self.limits.chunks_size,
            "data_files_size_in_mb": self.limits.data_files_size_in_mb,
            "video_files_size_in_mb": self.limits.video_files_size_in_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{episodes}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self._image_shapes else None,
            "features": features,
        }


class _FileCursor:
    """chunk/file indices of the current file, with lerobot's rollover rule."""

    def __init__(self, limits: FileLimits, size_in_mb: float) -> None:
        self.limits = limits
        self.max_bytes = size_in_mb * 1024 * 1024
        self.chunk_index = 0
        self.file_index = 0
        self.episodes = 0
        self.bytes = 0
        self.last_episode_bytes = 0

    def should_roll(self) -> bool:
        if self.episodes == 0:
            return False
        per_file = self.limits.episodes_per_file
        return self.bytes + self.last_episode_bytes >= self.max_bytes or (
            per_file is not None and self.episodes >= per_file
        )

    def roll(self) -> None:
        self.file_index += 1
        if self.file_index >= self.limits.chunks_size:
            self.chunk_index, self.file_index = self.chunk_index + 1, 0
        self.episodes = 0
        self.bytes = 0

    def record(self, episode_bytes: int) -> None:
        self.episodes += 1
        self.bytes += episode_bytes
        self.last_episode_bytes = episode_bytes


class _DataFiles:
    """Frame rows, buffered per data file and written when the file rolls over."""

    def __init__(self, root: Path, limits: FileLimits) -> None:
        self.root = root
        self.cursor = _FileCursor(limits, limits.data_files_size_in_mb)
        self.pending: list[pa.Table] = []

    def add(self, columns: dict[str, np.ndarray]) -> dict[str, int]:
        if self.cursor.should_roll():
            self.close()
            self.cursor.roll()
        table = frame_table(columns)
        self.pending.append(table)
        self.cursor.record(table.nbytes)
        return {
            "data/chunk_index": self.cursor.chunk_index,
            "data/file_index": self.cursor.file_index,
        }

    def close(self) -> None:
        if not self.pending:
            return
        path = self.root / DATA_PATH.format(
            chunk_index=self.cursor.chunk_index, file_index=self.cursor.file_index
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(self.pending), path)
        self.pending = []


class _VideoFiles:
    """One camera's mp4 files: episodes appended to the open file until it rolls over."""

    def __init__(
        self, root: Path, key: str, fps: int, limits: FileLimits, settings: VideoSettings
    ) -> None:
        self.root = root
        self.key = key
        self.fps = fps
        self.settings = settings
        self.cursor = _FileCursor(limits, limits.video_files_size_in_mb)
        self.container = None
        self.stream = None
        self.frames_in_file = 0
        self.duration_s = 0.0

    def add(self, frames: np.ndarray) -> dict:
        if self.container is not None and self.cursor.should_roll():
            self.close()
            self.cursor.roll()
        if self.container is None:
            self._open(frames.shape[2], frames.shape[1])
        episode_bytes = 0
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = self.frames_in_file + i
            if i == 0:  # each episode starts on a keyframe, as lerobot's per-episode encode does
                frame.pict_type = av.video.frame.PictureType.I
            episode_bytes += self._mux(self.stream.encode(frame))
        self.frames_in_file += len(frames)
        self.cursor.record(episode_bytes)
        from_timestamp = self.duration_s
        # lerobot: to_timestamp = from_timestamp + the episode video's duration (frames / fps)
        self.duration_s = from_timestamp + len(frames) / self.fps
        prefix = f"videos/{self.key}"
        return {
            f"{prefix}/chunk_index": self.cursor.chunk_index,
            f"{prefix}/file_index": self.cursor.file_index,
            f"{prefix}/from_timestamp": from_timestamp,
            f"{prefix}/to_timestamp": self.duration_s,
        }

    def close(self) -> None:
        if self.container is None:
            return
        self._mux(self.stream.encode())
        self.container.close()
        self.container = self.stream = None
        self.frames_in_file = 0
        self.duration_s = 0.0

    def _open(self, width: int, height: int) -> None:
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 otherwise prints its banner per file
        path = self.root / VIDEO_PATH.format(
            video_key=self.key,
            chunk_index=self.cursor.chunk_index,
            file_index=self.cursor.file_index,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        s = self.settings
        options = {"g": str(s.gop), "crf": str(s.crf), "preset": str(s.preset)}
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(s.codec, rate=self.fps, options=options)
        self.stream.pix_fmt = s.pix_fmt
        self.stream.width = width
        self.stream.height = height

    def _mux(self, packets) -> int:
        self.container.mux(packets)
        return sum(p.size for p in packets)


def frame_table(columns: dict[str, np.ndarray]) -> pa.Table:
    """Frame rows with lerobot's column types: vectors as list<float32>, indices int64."""
    arrays = {}
    for key, values in columns.items():
        if values.ndim == 2:
            flat = pa.array(values.reshape(-1))
            offsets = pa.array(np.arange(0, values.size + 1, values.shape[1], dtype=np.int32))
            arrays[key] = pa.ListArray.from_arrays(offsets, flat)
        else:
            arrays[key] = pa.array(values)
    return pa.table(arrays)


def tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as lerobot writes it: pandas frame indexed by task, task_index column."""
    table = pa.table(
        {
            "task_index": pa.array(range(len(tasks)), pa.int64()),
            "task": pa.array(tasks, pa.string()),
        }
    )
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
    }
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})


def feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """lerobot's per-episode stats of a frame column, reduced over frames."""
    keepdims = values.ndim == 1
    return {
        "min": values.min(axis=0, keepdims=keepdims),
        "max": values.max(axis=0, keepdims=keepdims),
        "mean": values.mean(axis=0, keepdims=keepdims, dtype=np.float64),
        "std": values.std(axis=0, keepdims=keepdims, dtype=np.float64),
        "count": np.array([len(values)]),
    }


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats in [0, 1], shape (3, 1, 1), over lerobot's sample of frames."""
    sample = frames[sample_indices(len(frames))]
    factor = max(sample.shape[1:3]) // 150 if max(sample.shape[1:3]) > 300 else 1
    pixels = sample[:, ::factor, ::factor].reshape(-1, sample.shape[-1])
    values = pixels.astype(np.float64) / 255.0
    return {
        "min": (pixels.min(axis=0) / 255.0).reshape(-1, 1, 1),
        "max": (pixels.max(axis=0) / 255.0).reshape(-1, 1, 1),
        "mean": values.mean(axis=0).reshape(-1, 1, 1),
        "std": values.std(axis=0).reshape(-1, 1, 1),
        "count": np.array([len(sample)]),
    }


def sample_indices(length: int) -> list[int]:
    """Frames lerobot samples for image stats: all of a short episode, ~length**0.75 else."""
    count = max(min(100, length), min(int(length**0.75), 10_000))
    return np.round(np.linspace(0, length - 1, count)).astype(int).tolist()


def aggregate_stats(
    episodes: list[dict[str, dict[str, np.ndarray]]],
) -> dict[str, dict[str, np.ndarray]]:
    """Dataset stats from per-episode stats: count-weighted mean, pooled variance."""
    result = {}
    for key in episodes[0]:
        stats = [episode[key] for episode in episodes]
        means = np.stack([s["mean"] for s in stats])
        variances = np.stack([s["std"] ** 2 for s in stats])
        counts = np.array([s["count"][0] for s in stats], dtype=np.float64)
        weights = counts.reshape(-1, *([1] * (means.ndim - 1)))
        total = counts.sum()
        mean = (means * weights).sum(axis=0) / total
        variance = ((variances + (means - mean) ** 2) * weights).sum(axis=0) / total
        result[key] = {
            "min": np.min(np.stack([s["min"] for s in stats]), axis=0),
            "max": np.max(np.stack([s["max"] for s in stats]), axis=0),
            "mean": mean,
            "std": np.sqrt(variance),
            "count": np.array([int(total)]),
        }
    return result
