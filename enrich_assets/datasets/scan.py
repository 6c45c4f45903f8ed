"""Cheap change detection: a signature of a root's metadata files (sizes and times), and the
per-episode content signatures that tell a re-recorded episode (same index, new content)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.lerobot.layout import LAYOUT_FILE
from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.infra.partition_keys import dataset_prefix, partition_key

META_GLOBS = (
    "meta/info.json",
    "meta/episodes.jsonl",
    "meta/episodes_stats.jsonl",
    "meta/episodes/*/*.parquet",
    LAYOUT_FILE,  # an override changes where the files are and what they are called
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


@dataclass(frozen=True)
class EpisodeChanges:
    """What a scan of one dataset found against what was known (partition keys)."""

    new: list[str]  # on disk, not yet a partition
    re_recorded: list[str]  # known, and its content signature changed
    gone: list[str]  # a partition whose episode vanished from disk
    signatures: dict[str, str]  # partition key -> content signature, as on disk now


def episode_changes(
    dataset_id: str, refs: Sequence[EpisodeRef], known: set[str], seen: Mapping[str, str]
) -> EpisodeChanges:
    """New, re-recorded and vanished episodes of `dataset_id`, given the known partitions
    and the signatures seen before."""
    on_disk = {partition_key(dataset_id, e.episode_index): e.signature for e in refs}
    prefix = dataset_prefix(dataset_id)
    return EpisodeChanges(
        new=[k for k in on_disk if k not in known],
        re_recorded=[k for k, s in on_disk.items() if k in known and seen.get(k, s) != s],
        gone=sorted(k for k in known if k.startswith(prefix) and k not in on_disk),
        signatures=on_disk,
    )
