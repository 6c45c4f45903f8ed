"""The doctor for every format without one of its own (HDF5, SQL tables, RLDS): it inspects
through the same reader the pipeline uses, so both agree on which episodes are usable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from enrich_assets.datasets.diagnosis import Diagnosis, Finding, Inspector, merge
from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.frames import frames_at
from enrich_assets.datasets.open import dataset_format, normalize_location, open_dataset
from enrich_assets.infra.redact import redact


def claims(target: str) -> bool:
    try:
        return dataset_format(target).name != "lerobot"
    except DatasetError:
        return False


def _episode_findings(ref: EpisodeRef, seen: Counter) -> list[Finding]:
    """Read the episode as the pipeline would: its rows, and the first and last frame of
    each camera (probing that the camera holds the whole episode)."""
    try:
        times = read_frames(ref, ("timestamp", "frame_index")).column("timestamp").to_numpy()
        for camera in ref.cameras:
            info = ref.frames[camera].probe(ref.length, float(times[-1]), ref.fps)
            seen[f"{camera}: {info.codec} {info.width}x{info.height}"] += 1
            ends = [0, ref.length - 1]
            frames_at(ref.frames[camera], ends, times[ends].astype(np.float64), ref.fps)
    except EpisodeError as exc:
        return [Finding("error", "episode", str(exc), "repair or remove it", (ref.episode_index,))]
    return []


def inspect(target: str, layout: Path | None) -> Diagnosis:
    location = normalize_location(target)
    shown = redact(location) or location
    fmt = dataset_format(location).name
    if layout is not None:
        problem = f"{layout}: --layout applies to LeRobot datasets only"
        fix = f"for {fmt}, see the README section of that format"
        return Diagnosis(shown, fmt, findings=[Finding("error", "layout", problem, fix)])
    try:
        refs = open_dataset(location, "doctor").episodes()
    except DatasetError as exc:
        return Diagnosis(
            shown, fmt, findings=[Finding("error", "dataset", str(exc), "repair the source")]
        )
    seen: Counter = Counter()
    findings = [f for ref in refs for f in _episode_findings(ref, seen)]
    return Diagnosis(
        shown,
        fmt,
        episodes=tuple(r.episode_index for r in refs),
        facts={
            "episodes": str(len(refs)),
            "frames": str(sum(r.length for r in refs)),
            "fps": ", ".join(sorted({f"{r.fps:g}" for r in refs})),
            "cameras": "; ".join(f"{k} ({n} episodes)" for k, n in sorted(seen.items())),
        },
        findings=merge(findings),
    )


READERS = Inspector("HDF5, SQL table, RLDS (through their readers)", claims, inspect)
