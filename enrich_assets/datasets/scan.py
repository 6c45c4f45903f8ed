"""Which episodes are new, re-recorded (same index, new content signature) or gone.

(The cheap whole-dataset change signature is each format's: `datasets.open.change_signature`.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.infra.partition_keys import dataset_prefix, partition_key


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
