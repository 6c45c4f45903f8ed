"""A curated subset of a LeRobot dataset, written as a new, valid LeRobot v3.0 dataset.

Episodes are renumbered from 0 in the order given. Frames are decoded from the source video
and re-encoded (AV1, as lerobot writes it): the simplest correct path, since v3.0 packs many
episodes per mp4 and copying packets would need keyframe-aligned cuts. It costs one
encode per frame; state, action and task strings are copied from the source as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.datasets.frames import frames_at
from enrich_assets.datasets.lerobot.reader import LeRobotReader
from enrich_assets.datasets.lerobot.v3_writer import EpisodeData, write_lerobot_v3

VECTORS = ("observation.state", "action")


def _names(feature: dict, what: str) -> list[str]:
    """Per-dimension names from info.json; lerobot also nests them ({"motors": [...]})."""
    names = feature.get("names")
    if isinstance(names, dict):
        names = [n for group in names.values() for n in group]
    width = int(np.prod(feature["shape"]))
    return list(names) if names and len(names) == width else [f"{what}_{i}" for i in range(width)]


def episode_data(ref: EpisodeRef) -> EpisodeData:
    """One source episode in memory: vectors from its parquet rows, frames decoded per camera."""
    table = read_frames(ref, ("timestamp", *VECTORS))
    missing = [c for c in VECTORS if c not in table.column_names]
    if missing:
        raise ValueError(
            f"{ref.table.location}: episode {ref.episode_index} lacks columns {missing}"
        )
    vectors = {c: np.asarray(table.column(c).to_pylist(), np.float32) for c in VECTORS}
    timestamps = table.column("timestamp").to_numpy().astype(np.float64)
    every = range(len(timestamps))
    frames = {
        camera: np.stack(frames_at(source, every, timestamps, ref.fps))
        for camera, source in ref.frames.items()
    }
    return EpisodeData(ref.task, vectors["observation.state"], vectors["action"], frames)


def export_episodes(reader: LeRobotReader, episode_indices: Sequence[int], out: Path) -> Path:
    """Write the chosen episodes of `reader`'s dataset to `out` (absent or empty)."""
    if not episode_indices:
        raise ValueError(f"{out}: no episodes selected; nothing to export")
    refs = {r.episode_index: r for r in reader.episodes()}
    unknown = sorted(set(episode_indices) - set(refs))
    if unknown:
        raise ValueError(f"{reader.root}: no episodes {unknown}")
    features = reader.info["features"]

    def episodes() -> Iterator[EpisodeData]:
        for index in episode_indices:  # one episode in memory at a time
            yield episode_data(refs[index])

    return write_lerobot_v3(
        out,
        episodes(),
        fps=int(round(reader.fps)),
        state_names=_names(features["observation.state"], "state"),
        action_names=_names(features["action"], "action"),
        robot_type=reader.info.get("robot_type") or "unknown",
    )
