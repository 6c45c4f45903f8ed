"""A camera's frames in an HDF5 dataset (a `FrameSource`): a raw uint8 `[T, H, W, 3]` array,
or one encoded image (JPEG/PNG) per frame, stored as variable-length uint8 / bytes, or as
ALOHA's zero-padded `[T, N]` uint8 rows.

Only the frames asked for are read (h5py slices; contiguous runs are read as one slab of
at most `SLAB` frames), never the whole array.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from enrich_assets.datasets.errors import EpisodeError
from enrich_assets.datasets.frames import FrameInfo
from enrich_assets.datasets.image_bytes import decode_image, image_kind

SLAB = 32  # frames read at once along a contiguous run of positions


def encoded(ds: h5py.Dataset) -> bool:
    """One encoded image per frame (vlen bytes/uint8, or padded uint8 rows), not raw pixels."""
    return ds.ndim in (1, 2) and (ds.dtype.kind in "OSV" or ds.dtype == np.uint8)


def _bytes(item: object) -> bytes:
    return item if isinstance(item, bytes) else np.asarray(item, np.uint8).tobytes()


@dataclass(frozen=True)
class HDF5Frames:
    """One camera of one episode: dataset `dataset` of `file`, rows `start..` of it."""

    file: Path
    dataset: str  # absolute path inside the file
    start: int = 0  # the episode's first row (a declared layout may pack episodes)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.dataset}"

    def _open(self) -> tuple[h5py.File, h5py.Dataset]:
        try:
            f = h5py.File(self.file, "r")
        except OSError as exc:
            raise EpisodeError(self.file, f"not a readable HDF5 file ({exc})") from exc
        ds = f.get(self.dataset)
        if not isinstance(ds, h5py.Dataset):
            f.close()
            raise EpisodeError(self.where, "image dataset is missing")
        if not encoded(ds) and not (ds.ndim == 4 and ds.shape[-1] == 3 and ds.dtype == np.uint8):
            f.close()
            raise EpisodeError(
                self.where,
                f"not frames: {ds.dtype} {ds.shape} (expected uint8 [T,H,W,3] or one "
                "JPEG/PNG byte string per frame)",
            )
        return f, ds

    def _image(self, ds: h5py.Dataset, row: object, index: int) -> np.ndarray:
        if not encoded(ds):
            return np.asarray(row)
        return decode_image(_bytes(row), f"{self.where}[{index}]")

    def iter_at(
        self, positions: Sequence[int], times: np.ndarray, fps: float
    ) -> Iterator[tuple[int, np.ndarray]]:
        order = sorted(range(len(positions)), key=lambda s: positions[s])
        f, ds = self._open()
        with f:
            count = ds.shape[0] - self.start
            i = 0
            while i < len(order):
                first = positions[order[i]]
                if not 0 <= first < count:
                    raise EpisodeError(
                        self.where, f"no frame {first}: holds {count} frames (truncated?)"
                    )
                last = first  # extend over a contiguous run of wanted positions
                j = i + 1
                while (
                    j < len(order)
                    and positions[order[j]] - first < SLAB
                    and positions[order[j]] - last <= 1
                    and positions[order[j]] < count
                ):
                    last = positions[order[j]]
                    j += 1
                try:
                    slab = ds[self.start + first : self.start + last + 1]
                except OSError as exc:
                    raise EpisodeError(self.where, f"unreadable frames ({exc})") from exc
                for slot in order[i:j]:
                    yield slot, self._image(ds, slab[positions[slot] - first], positions[slot])
                i = j

    def probe(self, length: int, last_time: float, fps: float) -> FrameInfo:
        f, ds = self._open()
        with f:
            count = ds.shape[0] - self.start
            if count < length:
                raise EpisodeError(
                    self.where,
                    f"holds {count} frames but the episode has {length} (truncated?)",
                )
            if not encoded(ds):
                return FrameInfo("raw", int(ds.shape[1]), int(ds.shape[2]), self.where)
            try:
                first = _bytes(ds[self.start])
            except OSError as exc:
                raise EpisodeError(self.where, f"unreadable frames ({exc})") from exc
            height, width = decode_image(first, f"{self.where}[0]").shape[:2]
            return FrameInfo(image_kind(first), height, width, self.where)
