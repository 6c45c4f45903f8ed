"""Video decoding with PyAV: seek to the wanted frames; never decode a whole file for a few.

LeRobot v3.0 concatenates episodes in one mp4, so a frame lives at
`from_timestamp + timestamp`; v2.1 has one file per episode (`from_timestamp` = 0).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enrich_assets.datasets.errors import EpisodeError
from enrich_assets.datasets.frames import FrameInfo


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float


def _open(path: Path):  # noqa: ANN202 - av.container.InputContainer
    import av

    if not path.is_file():
        raise EpisodeError(path, "video file is missing")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise EpisodeError(path, f"not a readable video ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise EpisodeError(path, "has no video stream")
    return container


def probe(path: Path) -> VideoInfo:
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        duration = (
            (stream.duration or 0) * tb if stream.duration else (container.duration or 0) / 1e6
        )
        return VideoInfo(
            codec=stream.codec_context.codec.canonical_name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(stream.average_rate or 0),
            duration_s=float(duration),
        )


def decode_at(path: Path, timestamps: Sequence[float], fps: float) -> list[np.ndarray]:
    """Decode the frames shown at `timestamps` (seconds in the file), as uint8 HxWx3 RGB."""
    out: list[np.ndarray | None] = [None] * len(timestamps)
    for slot, image in iter_decode_at(path, timestamps, fps):
        out[slot] = image
    return out  # type: ignore[return-value]


def iter_decode_at(
    path: Path, timestamps: Sequence[float], fps: float
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (position in `timestamps`, frame) in time order, holding one frame at a time.

    Each target is matched to the decoded frame nearest to it, within half a frame period;
    a target with no frame that close is an error (the video does not hold that frame).
    """
    import av

    order = np.argsort(timestamps, kind="stable")
    tolerance = 0.5 / fps
    container = _open(path)
    try:
        with container:
            stream = container.streams.video[0]
            targets = [float(timestamps[i]) for i in order]
            if _dense(targets, fps):
                stream.thread_type = "AUTO"
            else:  # a few frames per seek: decoder threads cost more than they give back
                stream.codec_context.thread_count = 1
            tb = float(stream.time_base)
            frames = _frames_after_seeks(container, stream, targets, tb)
            for slot, target, frame in zip(order, targets, frames, strict=True):
                if frame is None or abs(frame.pts * tb - target) > tolerance:
                    raise EpisodeError(
                        path, f"no frame at t={target:.6f}s (video ends or is corrupt)"
                    )
                yield int(slot), frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as exc:
        raise EpisodeError(path, f"video is corrupt or truncated ({exc})") from exc


def _dense(targets: list[float], fps: float) -> bool:
    """Whether the sorted targets are mostly consecutive frames (decoded without seeking).

    Measured on the real AV1 fixture: 5 keyframes per episode cost half the CPU with one
    decoder thread (docs/benchmarks.md); decoding every frame wants frame threads.
    """
    return len(targets) > 1 and float(np.median(np.diff(targets))) <= 2.0 / fps


def _frames_after_seeks(container, stream, targets: list[float], tb: float) -> Iterator:  # noqa: ANN001
    """For sorted targets, yield the decoded frame nearest each one.

    Seeks only when the next target is beyond the frames already decoded (plus a small
    look-ahead); otherwise keeps decoding forward, which is cheaper than a seek.
    """
    decoder: Iterator | None = None
    previous = None  # last frame decoded before the current target
    current = None
    for target in targets:
        if decoder is None or current is None or target - current.pts * tb > 1.0:
            container.seek(
                max(0, round(target / tb)), stream=stream, backward=True, any_frame=False
            )
            decoder = container.decode(stream)
            previous, current = None, next(decoder, None)
        while current is not None and current.pts * tb < target:
            previous, current = current, next(decoder, None)
        candidates = [f for f in (previous, current) if f is not None]
        yield min(candidates, key=lambda f: abs(f.pts * tb - target)) if candidates else None


@dataclass(frozen=True)
class VideoSlice:
    """One camera's frames for an episode (a `FrameSource`): a video file and the episode's
    offset inside it."""

    path: Path
    from_timestamp: float = 0.0

    def iter_at(
        self, positions: Sequence[int], times: np.ndarray, fps: float
    ) -> Iterator[tuple[int, np.ndarray]]:
        return iter_decode_at(self.path, self.from_timestamp + np.asarray(times, np.float64), fps)

    def probe(self, length: int, last_time: float, fps: float) -> FrameInfo:
        info = probe(self.path)
        if self.from_timestamp + last_time > info.duration_s + 1.0 / fps:
            raise EpisodeError(
                self.path,
                f"the episode needs t={self.from_timestamp + last_time:.3f}s "
                f"but the video lasts {info.duration_s:.3f}s (truncated?)",
            )
        return FrameInfo(info.codec, info.height, info.width, str(self.path), self.from_timestamp)


def decode_all(path: Path) -> Iterator[np.ndarray]:
    """Every frame in order: the baseline keyframe extraction is measured against."""
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")
