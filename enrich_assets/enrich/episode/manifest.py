"""The episode manifest: what an episode is, checked against its files before any decoding."""

from __future__ import annotations

from typing import Any

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import EpisodeError
from enrich_assets.datasets.lerobot.reader import read_frames
from enrich_assets.datasets.video import probe


def build_manifest(ref: EpisodeRef) -> list[dict[str, Any]]:
    """One row per camera; raises EpisodeError naming the file when the episode is damaged."""
    frames = read_frames(ref, ("timestamp", "frame_index", "episode_index"))
    timestamps = frames.column("timestamp").to_pylist()
    duration = float(timestamps[-1] - timestamps[0])
    if not ref.videos:
        raise EpisodeError(ref.data_file, "the dataset declares no video cameras")
    rows = []
    for camera in ref.cameras:
        video = ref.videos[camera]
        info = probe(video.path)
        if video.from_timestamp + timestamps[-1] > info.duration_s + 1.0 / ref.fps:
            raise EpisodeError(
                video.path,
                f"episode {ref.episode_index} needs t={video.from_timestamp + timestamps[-1]:.3f}s "
                f"but the video lasts {info.duration_s:.3f}s (truncated?)",
            )
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
                "tech_video_path": str(video.path),
                "tech_video_from_s": video.from_timestamp,
                "tech_data_path": str(ref.data_file),
            }
        )
    return rows
