"""One partition per episode, across every registered dataset."""

from __future__ import annotations

import warnings

import dagster as dg

from enrich_assets.infra.settings import load_settings

# backfill_policy and range runs are marked beta in 1.13; we rely on them knowingly
warnings.filterwarnings("ignore", category=dg.BetaWarning)

episodes = dg.DynamicPartitionsDefinition(name="episodes")

# Backfills of many episodes run as ranges of `batch_size` (settings, default 64) per run,
# not one run each.
EPISODE_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=load_settings().batch_size)
