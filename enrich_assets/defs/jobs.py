"""The main job: every episode-partitioned asset, run over key ranges."""

from __future__ import annotations

import dagster as dg

from enrich_assets.defs.partitions import episodes

# Assets over all episodes (clusters, dedup, search index) live in this group, outside the job,
# as does the writeback of language columns into the datasets' own files.
DERIVED_GROUP = "derived"
WRITEBACK_GROUP = "writeback"
CURATION_GROUP = "curation"  # golden-set score, validation report

enrich_episodes_job = dg.define_asset_job(
    "enrich_episodes",
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.groups(DERIVED_GROUP, WRITEBACK_GROUP, CURATION_GROUP),
    partitions_def=episodes,
    description="Enrich a range of episodes: every per-episode asset, batched into range runs.",
)


def range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
