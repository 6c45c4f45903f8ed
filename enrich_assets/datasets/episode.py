"""What the pipeline knows about one episode, whatever the source format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from enrich_assets.datasets.errors import EpisodeError
from enrich_assets.datasets.frames import FRAME_COLUMNS, FrameSource, FrameTable


@dataclass(frozen=True)
class EpisodeRef:
    dataset_id: str
    episode_index: int
    length: int
    fps: float
    task: str
    table: FrameTable  # the per-frame rows (timestamps, state, action)
    frames: dict[str, FrameSource] = field(default_factory=dict)  # camera -> its frames
    resolution: dict[str, tuple[int, int]] = field(default_factory=dict)  # camera -> (h, w)
    # content signature: changes when the episode is re-recorded under the same index
    # (e.g. `enrich_assets.datasets.lerobot.reader.episode_signature`)
    signature: str = ""
    # what the reader found wrong with this episode alone; raised by `check()` (and so by
    # `read_frames`), so only this episode's partition fails
    problem: EpisodeError | None = field(default=None, compare=False, repr=False)
    # the source holds only frames someone chose (a SQL table of clips): each is a keyframe
    every_frame_is_keyframe: bool = False

    @property
    def cameras(self) -> list[str]:
        return sorted(self.frames)

    def check(self) -> None:
        """Raise the episode's own problem, if the reader found one."""
        if self.problem is not None:
            raise self.problem


def read_frames(ref: EpisodeRef, columns: Sequence[str] = FRAME_COLUMNS) -> pa.Table:
    """The episode's per-frame rows, after raising any problem the reader found with it."""
    ref.check()
    return ref.table.read(columns)
