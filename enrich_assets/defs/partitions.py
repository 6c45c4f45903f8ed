"""One partition per episode, across every registered dataset."""

from __future__ import annotations

import warnings

import dagster as dg

# backfill_policy and range runs are marked beta in 1.13; we rely on them knowingly
warnings.filterwarnings("ignore", category=dg.BetaWarning)

episodes = dg.DynamicPartitionsDefinition(name="episodes")

# Backfills of many episodes run as ranges of this many per run, not one run each.
EPISODE_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=64)
