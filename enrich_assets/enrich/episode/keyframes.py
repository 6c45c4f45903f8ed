"""Which frames of an episode become keyframes: the policy is data, read from schemas/."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.datasets.frames import FrameSource, frames_at
from enrich_assets.enrich.episode.quality import grey
from enrich_assets.enrich.rules import RuleOutcome, outcome
from enrich_assets.infra.pixels import pixel_hash

FRAME_COLUMNS = ("timestamp", "frame_index", "episode_index")  # what extraction reads


@dataclass(frozen=True)
class KeyframePolicy:
    mode: Literal["count", "fps", "scene_change"] = "count"
    count: int = 5  # mode=count: first + last + evenly spaced, this many in all
    fps: float = 1.0  # mode=fps: uniform at this rate (first and last always kept)
    threshold: float = 0.12  # mode=scene_change: mean abs grey difference (0-1) that starts a scene
    max_count: int = 32  # scene_change never yields more than this


def select_by_count(length: int, count: int) -> list[int]:
    """First, last and evenly spaced positions in between (fewer if the episode is short)."""
    if length <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, length - 1, min(count, length))})


def select_by_fps(timestamps: np.ndarray, fps: float) -> list[int]:
    """The frame nearest each tick of a 1/fps clock started at the first frame, plus the
    last: keyframes at F fps, and the frames the language modules sample."""
    if len(timestamps) == 0:
        return []
    if fps <= 0:
        raise ValueError(f"sampling rate must be positive, got {fps}")
    ticks = np.arange(timestamps[0], timestamps[-1] + 1e-9, 1.0 / fps)
    picks = {int(np.abs(timestamps - t).argmin()) for t in ticks} | {len(timestamps) - 1}
    return sorted(picks)


def select_by_scene_change(grey_thumbs: np.ndarray, threshold: float, max_count: int) -> list[int]:
    """Frames where the picture changes by more than `threshold` since the last kept frame."""
    picks = [0]
    for i in range(1, len(grey_thumbs)):
        if np.abs(grey_thumbs[i] - grey_thumbs[picks[-1]]).mean() > threshold:
            picks.append(i)
    if picks[-1] != len(grey_thumbs) - 1:
        picks.append(len(grey_thumbs) - 1)
    if len(picks) > max_count:  # keep the first, last and an even spread of the rest
        picks = [picks[i] for i in select_by_count(len(picks), max_count)]
    return picks


def select_keyframes(
    policy: KeyframePolicy,
    timestamps: np.ndarray,
    grey_thumbs: Callable[[], np.ndarray] | None = None,
) -> list[int]:
    """Positions (row numbers within the episode) of the keyframes.

    `grey_thumbs` is called only by the scene-change policy, the one that must see every
    frame; the others decide from timestamps alone and never decode more than they keep.
    """
    if policy.mode == "count":
        return select_by_count(len(timestamps), policy.count)
    if policy.mode == "fps":
        return select_by_fps(timestamps, policy.fps)
    if policy.mode == "scene_change":
        if grey_thumbs is None:
            raise ValueError("scene_change keyframes need the episode's frames")
        return select_by_scene_change(grey_thumbs(), policy.threshold, policy.max_count)
    raise ValueError(f"unknown keyframe policy mode {policy.mode!r}")


def check_keyframes(
    cameras: list[str],
    keyframes: list[tuple[str, float]],
    frame_timestamps: np.ndarray,
) -> list[RuleOutcome]:
    """Every camera has a keyframe, and every keyframe sits exactly on a real frame's timestamp."""
    have = {camera for camera, _ in keyframes}
    real = set(frame_timestamps.astype(np.float32).tolist())
    return [
        outcome("keyframe_per_camera", [f"no keyframe for {c}" for c in cameras if c not in have]),
        outcome(
            "keyframe_timestamp_exact",
            [
                f"{c} t={t!r} is not a frame timestamp"
                for c, t in keyframes
                if np.float32(t) not in real
            ],
        ),
    ]


@dataclass(frozen=True)
class Keyframe:
    camera: str
    frame_index: int
    timestamp: float  # exactly the source parquet's float32 value
    image: np.ndarray  # uint8 HxWx3 RGB


def keyframe_rows(frames: Sequence[Keyframe], image_paths: Sequence[str]) -> list[dict[str, Any]]:
    """One catalog row per keyframe (its cached image at `image_paths[i]`), ranked in time
    order within its camera."""
    rank: dict[str, int] = {}
    rows = []
    for kf, path in zip(frames, image_paths, strict=True):
        rank[kf.camera] = rank.get(kf.camera, -1) + 1
        rows.append(
            {
                "camera": kf.camera,
                "frame_index": kf.frame_index,
                "tech_timestamp": kf.timestamp,
                "tech_keyframe_rank": rank[kf.camera],
                "tech_image_path": path,
                "tech_image_sha256": pixel_hash(kf.image),
                "tech_height": kf.image.shape[0],
                "tech_width": kf.image.shape[1],
            }
        )
    return rows


def extract_keyframes(
    ref: EpisodeRef, policy: KeyframePolicy, frames: pa.Table | None = None
) -> list[Keyframe]:
    """Decode only the keyframes of every camera (scene-change mode looks at all frames).

    `frames`: the episode's rows (`read_frames`, with timestamp and frame_index) if the
    caller has them already, so the parquet is read once.
    """
    if frames is None:
        frames = read_frames(ref, FRAME_COLUMNS)
    timestamps = frames.column("timestamp").to_numpy()
    times = timestamps.astype(np.float64)
    frame_indices = frames.column("frame_index").to_numpy()
    every = list(range(len(times)))
    keyframes: list[Keyframe] = []
    for camera in ref.cameras:
        source = ref.frames[camera]

        def thumbs(source: FrameSource = source) -> np.ndarray:
            return np.stack(
                [grey(img[::8, ::8]) / 255.0 for _, img in source.iter_at(every, times, ref.fps)]
            )

        picks = (
            every if ref.every_frame_is_keyframe else select_keyframes(policy, timestamps, thumbs)
        )
        images = frames_at(source, picks, times[picks], ref.fps)
        keyframes.extend(
            Keyframe(camera, int(frame_indices[p]), float(timestamps[p]), img)
            for p, img in zip(picks, images, strict=True)
        )
    return keyframes
