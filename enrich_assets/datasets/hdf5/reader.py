"""A reader for HDF5 datasets: one `.hdf5`/`.h5` file, or a folder of them.

Episodes are numbered 0.. over the files in natural order (`a_2` before `a_10`) and, within
a file, over its episode groups in natural order (`demo_2` before `demo_10`); the partition
key is `<dataset_id>:ep<index>` as for every format, and `episode_names()` maps an index back
to `file.hdf5:/data/demo_N`. Adding a file that sorts before others renumbers those after it.

Listing opens each file once and reads only group names, attributes and shapes; frames
are read lazily by `HDF5Frames`. A file that cannot be opened, or an episode with no
length, becomes the `problem` of its episodes: only they fail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.frames import clock_columns, vector_column
from enrich_assets.datasets.hdf5.frames import HDF5Frames
from enrich_assets.datasets.hdf5.layout import (
    DeclaredLayout,
    Layout,
    detect_layout,
    layout_file,
    load_declared,
    natural_key,
)
from enrich_assets.infra.files import stat_signature

SUFFIXES = (".hdf5", ".h5")
SIDECAR = ".enrich.h5"  # our write-back files, never episodes


def hdf5_files(location: Path) -> list[Path]:
    """The dataset's HDF5 files: the file itself, or a folder's, in natural order."""
    if location.is_file():
        return [location]
    files = [
        p
        for p in location.iterdir()
        if p.suffix in SUFFIXES and not p.name.endswith(SIDECAR) and p.is_file()
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def is_hdf5_dataset(location: str) -> bool:
    path = Path(location)
    if path.is_file():
        return path.suffix in SUFFIXES
    return path.is_dir() and bool(hdf5_files(path))


def change_signature(location: str) -> str:
    path = Path(location)
    base = path.parent if path.is_file() else path
    extra = [layout_file(path)] if layout_file(path).is_file() else []
    return stat_signature(base, [*hdf5_files(path), *extra])


@dataclass(frozen=True)
class HDF5Rows:
    """One episode's per-frame rows (a `FrameTable`): timestamps are frame_index / fps."""

    file: Path
    group: str  # the episode group ("/" = the whole file)
    episode_index: int
    length: int
    fps: float
    state: tuple[str, ...]
    action: str | None

    @property
    def location(self) -> str:
        return f"{self.file}:{self.group}"

    def _vector(self, f: h5py.File, paths: Sequence[str]) -> pa.Array:
        parts = []
        for relative in paths:
            ds = f.get(f"{self.group.rstrip('/')}/{relative}")
            where = f"{self.file}:{self.group.rstrip('/')}/{relative}"
            if not isinstance(ds, h5py.Dataset):
                raise EpisodeError(where, "dataset is missing")
            if ds.shape[0] != self.length:
                raise EpisodeError(
                    where, f"has {ds.shape[0]} rows but the episode has {self.length} frames"
                )
            parts.append(np.asarray(ds[()], np.float32).reshape(self.length, -1))
        values = np.concatenate(parts, axis=1)
        return vector_column(values)

    def read(self, columns: Sequence[str]) -> pa.Table:
        if self.length <= 0:
            raise EpisodeError(self.location, f"episode {self.episode_index} has no frames")
        out = clock_columns(self.length, self.fps, self.episode_index, columns)
        wanted = set(columns)
        needs = [
            ("observation.state", self.state),
            ("action", (self.action,) if self.action else ()),
        ]
        if any(c in wanted and paths for c, paths in needs):
            try:
                with h5py.File(self.file, "r") as f:
                    for column, paths in needs:
                        if column in wanted and paths:
                            out[column] = self._vector(f, paths)
            except OSError as exc:
                raise EpisodeError(self.file, f"unreadable HDF5 ({exc})") from exc
        return pa.table(out)


@dataclass(frozen=True)
class Episode:
    """Where one episode lives: for the write-back and for readable names."""

    file: Path
    group: str

    @property
    def name(self) -> str:
        return f"{self.file.name}:{self.group}"


class HDF5Reader:
    format = "hdf5"

    def __init__(self, location: Path, dataset_id: str) -> None:
        self.root = location
        self.location = str(location)
        self.dataset_id = dataset_id
        self.files = hdf5_files(location)
        if not self.files:
            raise DatasetError(location, "holds no .hdf5/.h5 files")
        declared_at = layout_file(location)
        self.declared: DeclaredLayout | None = (
            load_declared(declared_at) if declared_at.is_file() else None
        )
        self._listed: list[tuple[EpisodeRef, Episode]] | None = None

    def _list(self) -> list[tuple[EpisodeRef, Episode]]:
        if self._listed is None:
            listed: list[tuple[EpisodeRef, Episode]] = []
            for path in self.files:
                listed += self._file_episodes(path, len(listed))
            if not listed:
                raise DatasetError(self.root, "holds no episodes")
            self._listed = listed
        return self._listed

    def _file_episodes(self, path: Path, first: int) -> list[tuple[EpisodeRef, Episode]]:
        try:
            with h5py.File(path, "r") as f:
                layout = detect_layout(f, path, self.declared)
                return [
                    self._ref(f, path, layout, group, first + i)
                    for i, group in enumerate(layout.episodes)
                ]
        except OSError as exc:  # a damaged file: its episode(s) fail, the others still run
            problem = EpisodeError(path, f"not a readable HDF5 file ({exc})")
            ref = EpisodeRef(
                self.dataset_id,
                first,
                0,
                1.0,
                "",
                HDF5Rows(path, "/", first, 0, 1.0, (), None),
                signature=stat_signature(path.parent, [path]),
                problem=problem,
            )
            return [(ref, Episode(path, "/"))]

    def _ref(
        self, f: h5py.File, path: Path, layout: Layout, group: str, index: int
    ) -> tuple[EpisodeRef, Episode]:
        node = f[group]
        prefix = group.rstrip("/")
        length, problem = _length(node, path, prefix, layout)
        frames = {
            cam: HDF5Frames(path, f"{prefix}/{relative}")
            for cam, relative in layout.cameras.items()
        }
        resolution = {}
        for cam, relative in layout.cameras.items():
            ds = node.get(relative)
            if isinstance(ds, h5py.Dataset) and ds.ndim == 4:
                resolution[cam] = (int(ds.shape[1]), int(ds.shape[2]))
        shapes = {
            name: [list(d.shape), str(d.dtype)]
            for name in (*layout.cameras.values(), *layout.state, layout.action or "")
            if isinstance(d := node.get(name), h5py.Dataset)
        }
        signature = hashlib.sha256(
            json.dumps([path.name, group, length, shapes], sort_keys=True).encode()
        ).hexdigest()[:16]
        rows = HDF5Rows(path, group, index, length, layout.fps, tuple(layout.state), layout.action)
        ref = EpisodeRef(
            self.dataset_id,
            index,
            length,
            layout.fps,
            layout.task,
            rows,
            frames,
            resolution,
            signature,
            problem,
        )
        return ref, Episode(path, group)

    def episodes(self) -> list[EpisodeRef]:
        return [ref for ref, _ in self._list()]

    def episode_names(self) -> dict[int, Episode]:
        """Episode index -> its file and group (`file.hdf5:/data/demo_3`)."""
        return {ref.episode_index: where for ref, where in self._list()}

    def signatures(self) -> dict[int, str]:
        return {e.episode_index: e.signature for e in self.episodes()}


def _length(
    node: h5py.Group, path: Path, prefix: str, layout: Layout
) -> tuple[int, EpisodeError | None]:
    """Frames in the episode: its length attribute, else the action rows, else the first
    camera's; the episode's problem when there is none."""
    if layout.length_attr and layout.length_attr in node.attrs:
        return int(node.attrs[layout.length_attr]), None
    for relative in (layout.action, *layout.cameras.values()):
        ds = node.get(relative) if relative else None
        if isinstance(ds, h5py.Dataset):
            return int(ds.shape[0]), None
    where = f"{path}:{prefix or '/'}"
    return 0, EpisodeError(where, "episode has no action or camera dataset to count frames")
