"""A camera's frames and an episode's frame table, wherever a format stores them.

Every format hands the pipeline the same two things per episode: for each camera a
`FrameSource` (a slice of a video file, an HDF5 array, TFRecord-encoded images, image bytes
or paths in SQL rows, ...) and one `FrameTable` (the per-frame rows: timestamps, frame
indices, state, action). Keyframe selection, the decode-once cache and everything
downstream see only these, so they stay format-blind.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

# the per-frame columns a FrameTable serves (a format may lack state or action)
FRAME_COLUMNS = ("timestamp", "frame_index", "episode_index", "observation.state", "action")


@dataclass(frozen=True)
class FrameInfo:
    """What holds a camera's frames, as the episode manifest records it."""

    codec: str  # a video codec name, or how an array stores frames: raw, jpeg, png
    height: int
    width: int
    location: str  # a file path, `file.hdf5:/dataset/path`, a URL, ...
    offset_s: float = 0.0  # where the episode starts inside a shared video file


class FrameSource(Protocol):
    """One camera's frames of one episode."""

    def iter_at(
        self, positions: Sequence[int], times: np.ndarray, fps: float
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (slot in `positions`, uint8 HxWx3 RGB) for the frames at these row positions
        of the episode (`times`: their timestamps, seconds from the episode's start), holding
        one frame at a time. Reads only those frames; raises EpisodeError naming the file."""
        ...

    def probe(self, length: int, last_time: float, fps: float) -> FrameInfo:
        """Codec and size, without decoding every frame; raises EpisodeError when the source
        cannot hold an episode of `length` frames ending at `last_time`."""
        ...


class FrameTable(Protocol):
    """One episode's per-frame rows."""

    location: str  # shown in errors and the manifest

    def read(self, columns: Sequence[str]) -> pa.Table:
        """The wanted columns that exist (always `frame_index`), sorted by frame_index, as many
        rows as the episode's length; raises EpisodeError naming the file otherwise."""
        ...


def clock_columns(
    length: int, fps: float, episode_index: int, columns: Sequence[str]
) -> dict[str, pa.Array]:
    """`frame_index` 0..length-1, and the `timestamp` (frame_index / fps) and `episode_index`
    columns when wanted: the rows of a format that records frames on a fixed clock."""
    index = np.arange(length)
    out: dict[str, pa.Array] = {"frame_index": pa.array(index, pa.int64())}
    if "timestamp" in columns:
        out["timestamp"] = pa.array((index / fps).astype(np.float32))
    if "episode_index" in columns:
        out["episode_index"] = pa.array(np.full(length, episode_index, np.int64))
    return out


def vector_column(values: np.ndarray) -> pa.FixedSizeListArray:
    """A [rows, n] float array as the fixed-size list column `observation.state` / `action`."""
    return pa.FixedSizeListArray.from_arrays(values.reshape(-1), values.shape[1])


def frames_at(
    source: FrameSource, positions: Sequence[int], times: np.ndarray, fps: float
) -> list[np.ndarray]:
    """The frames at `positions`, in that order."""
    out: list[np.ndarray | None] = [None] * len(positions)
    for slot, image in source.iter_at(positions, times, fps):
        out[slot] = image
    return out  # type: ignore[return-value]
