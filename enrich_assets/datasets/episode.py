"""What the pipeline knows about one episode, whatever the source format."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VideoSlice:
    """One camera's frames for an episode: a file and the episode's offset inside it."""

    path: Path
    from_timestamp: float = 0.0


@dataclass(frozen=True)
class EpisodeRef:
    dataset_id: str
    episode_index: int
    length: int
    fps: float
    task: str
    data_file: Path
    # rows of `data_file` that belong to this episode (global `index` range for v3.0)
    row_range: tuple[int, int] | None
    videos: dict[str, VideoSlice] = field(default_factory=dict)
    resolution: dict[str, tuple[int, int]] = field(default_factory=dict)  # camera -> (h, w)

    @property
    def cameras(self) -> list[str]:
        return sorted(self.videos)
