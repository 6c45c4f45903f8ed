"""One RLDS episode = one TFRecord record: its per-step rows (a `FrameTable`) and its
cameras' images (`FrameSource`s), read by seeking to the record and parsing its
`tf.train.Example`; only the images asked for are decoded."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError
from tfrecord import example_pb2

from enrich_assets.datasets.errors import EpisodeError
from enrich_assets.datasets.frames import FrameInfo, clock_columns, vector_column
from enrich_assets.datasets.image_bytes import decode_image, image_kind
from enrich_assets.datasets.rlds import tfrecord
from enrich_assets.datasets.rlds.features import Leaf


@dataclass(frozen=True)
class RecordAt:
    """Where an episode's record is: the shard, its number in the shard, its framing."""

    shard: Path
    number: int
    record: tfrecord.Record

    @property
    def location(self) -> str:
        return f"{self.shard}:record {self.number}"

    def example(self) -> example_pb2.Example:
        """The record's Example, its checksums verified; EpisodeError naming the shard."""
        try:
            return _example(self.shard, self.record)
        except OSError as exc:
            raise EpisodeError(self.location, f"unreadable shard ({exc})") from exc
        except (tfrecord.RecordError, DecodeError) as exc:
            raise EpisodeError(self.location, str(exc)) from exc


@functools.lru_cache(maxsize=2)
def _example(shard: Path, record: tfrecord.Record) -> example_pb2.Example:
    """Parsed once for an episode's rows and each of its cameras (the last two records are
    kept: a record holds every step's images, so they are large)."""
    return example_pb2.Example.FromString(tfrecord.read(shard, record))


def values(example: example_pb2.Example, key: str, where: str) -> Sequence[object]:
    """The values of step key `key` (`steps/` + key): ints, floats or bytes."""
    feature = example.features.feature.get(f"steps/{key}")
    kind = feature.WhichOneof("kind") if feature is not None else None
    if kind is None:
        raise EpisodeError(where, f"has no steps/{key}")
    return getattr(feature, kind).value


def step_count(example: example_pb2.Example, count_key: str, where: str) -> int:
    return len(values(example, count_key, where))


def text(example: example_pb2.Example, key: str | None, where: str) -> str:
    """The first step's text of `key` ("" when none)."""
    if key is None:
        return ""
    found = values(example, key, where)
    return found[0].decode("utf-8", "replace") if found else ""  # type: ignore[union-attr]


@dataclass(frozen=True)
class RLDSRows:
    """One episode's per-step rows: timestamps are step / fps (RLDS records no times)."""

    at: RecordAt
    episode_index: int
    length: int
    fps: float
    state: tuple[Leaf, ...]
    action: tuple[Leaf, ...]

    @property
    def location(self) -> str:
        return self.at.location

    def _vector(self, example: example_pb2.Example, leaves: Sequence[Leaf]) -> pa.Array:
        parts = []
        for leaf in leaves:
            found = np.asarray(values(example, leaf.key, self.location), np.float32)
            if found.size != self.length * leaf.size:
                raise EpisodeError(
                    self.location,
                    f"steps/{leaf.key} holds {found.size} values, expected {self.length} steps"
                    f" x {leaf.size}",
                )
            parts.append(found.reshape(self.length, leaf.size))
        flat = np.concatenate(parts, axis=1)
        return vector_column(flat)

    def read(self, columns: Sequence[str]) -> pa.Table:
        if self.length <= 0:
            raise EpisodeError(self.location, f"episode {self.episode_index} has no steps")
        out = clock_columns(self.length, self.fps, self.episode_index, columns)
        wanted = set(columns)
        needs = [(c, leaves) for c, leaves in (("observation.state", self.state),
                 ("action", self.action)) if c in wanted and leaves]  # fmt: skip
        if needs:
            example = self.at.example()
            for column, leaves in needs:
                out[column] = self._vector(example, leaves)
        return pa.table(out)


@dataclass(frozen=True)
class RLDSFrames:
    """One camera of one episode: step key `key` holds one encoded image per step."""

    at: RecordAt
    key: str  # e.g. observation/image

    @property
    def where(self) -> str:
        return f"{self.at.location}:steps/{self.key}"

    def _images(self, length: int | None = None) -> Sequence[bytes]:
        images = values(self.at.example(), self.key, self.at.location)
        if length is not None and len(images) < length:
            raise EpisodeError(
                self.where, f"holds {len(images)} images but the episode has {length} steps"
            )
        return images  # type: ignore[return-value]

    def iter_at(
        self, positions: Sequence[int], times: np.ndarray, fps: float
    ) -> Iterator[tuple[int, np.ndarray]]:
        images = self._images()
        for slot, position in enumerate(positions):
            if not 0 <= position < len(images):
                raise EpisodeError(self.where, f"no step {position}: holds {len(images)} images")
            yield slot, decode_image(images[position], f"{self.where}[{position}]")

    def probe(self, length: int, last_time: float, fps: float) -> FrameInfo:
        images = self._images(length)
        height, width = decode_image(images[0], f"{self.where}[0]").shape[:2]
        return FrameInfo(image_kind(images[0]), height, width, self.where)
