"""One partition per episode, across every registered dataset."""

from __future__ import annotations

import dagster as dg

episodes = dg.DynamicPartitionsDefinition(name="episodes")

# Backfills of many episodes run as ranges of this many per run, not one run each.
EPISODE_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=64)
