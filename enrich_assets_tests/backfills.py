"""A partitioned backfill submitted the way the UI does, for the daemon-driven tests."""

from __future__ import annotations

import dagster as dg
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.utils import make_new_backfill_id
from dagster._time import get_current_timestamp

IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def add_backfill(
    workspace,  # noqa: ANN001 - a daemon workspace context
    instance: dg.DagsterInstance,
    keys: list[str],
    assets: list[dg.AssetKey],
) -> PartitionBackfill:
    """A backfill of `assets` over `keys` (steps in-process), added to the instance."""
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=workspace.create_request_context().asset_graph,
        partition_names=keys,
        asset_selection=assets,
        backfill_timestamp=get_current_timestamp(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=None,
        description=None,
        run_config=IN_PROCESS,
    )
    instance.add_backfill(backfill)
    return backfill
