"""Cheap change detection: a signature of a root's metadata files (sizes and times), and the
per-episode content signatures that tell a re-recorded episode (same index, new content)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from enrich_assets.datasets.lerobot.reader import open_lerobot

META_GLOBS = (
    "meta/info.json",
    "meta/episodes.jsonl",
    "meta/episodes_stats.jsonl",
    "meta/episodes/*/*.parquet",
)


def metadata_signature(root: Path) -> str:
    """Changes whenever LeRobot appends episodes (it rewrites these files), without reading them."""
    digest = hashlib.sha256()
    for pattern in META_GLOBS:
        for path in sorted(root.glob(pattern)):
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def episode_signatures(root: Path, dataset_id: str) -> dict[int, str]:
    """Episode index -> content signature (see `reader.episode_signature`): an episode whose
    signature differs from the one recorded when it was last enriched was re-recorded."""
    return open_lerobot(root, dataset_id).signatures()
