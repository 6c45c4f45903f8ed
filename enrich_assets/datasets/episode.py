"""What the pipeline knows about one episode, whatever the source format."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from enrich_assets.datasets.errors import EpisodeError


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
    # content signature: changes when the episode is re-recorded under the same index
    # (see `enrich_assets.datasets.lerobot.reader.episode_signature` for what it covers)
    signature: str = ""
    # LeRobot column name -> its name in the data file, where a layout override renames it
    columns: dict[str, str] = field(default_factory=dict, compare=False)
    # what the reader found wrong with this episode alone; raised by `check()` (and so by
    # `read_frames`), so only this episode's partition fails
    problem: EpisodeError | None = field(default=None, compare=False, repr=False)

    @property
    def cameras(self) -> list[str]:
        return sorted(self.videos)

    def check(self) -> None:
        """Raise the episode's own problem, if the reader found one."""
        if self.problem is not None:
            raise self.problem
