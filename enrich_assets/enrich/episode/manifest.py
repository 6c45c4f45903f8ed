"""The episode manifest: what an episode is, checked against its files before any decoding."""

from __future__ import annotations

from typing import Any

from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.datasets.errors import EpisodeError


def build_manifest(ref: EpisodeRef) -> list[dict[str, Any]]:
    """One row per camera; raises EpisodeError naming the file when the episode is damaged."""
    frames = read_frames(ref, ("timestamp", "frame_index", "episode_index"))
    timestamps = frames.column("timestamp").to_pylist()
    duration = float(timestamps[-1] - timestamps[0])
    if not ref.frames:
        raise EpisodeError(ref.table.location, "the dataset declares no cameras")
    rows = []
    for camera in ref.cameras:
        info = ref.frames[camera].probe(ref.length, float(timestamps[-1]), ref.fps)
        rows.append(
            {
                "camera": camera,
                "tech_length": ref.length,
                "tech_fps": ref.fps,
                "tech_duration_s": duration,
                "tech_task": ref.task,
                "tech_height": info.height,
                "tech_width": info.width,
                "tech_codec": info.codec,
                "tech_video_path": info.location,
                "tech_video_from_s": info.offset_s,
                "tech_data_path": ref.table.location,
            }
        )
    return rows
