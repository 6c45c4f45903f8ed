"""`enrich_missing`: every `schedule_hours` hours (settings, default 6), range runs of
`enrich_episodes` for the episode partitions that are not yet enriched.

The alternative to the `new_episodes` sensor, which stays the default path (this schedule
starts stopped): the sensor requests runs when episodes appear on disk; the schedule
periodically sweeps Dagster's partition status and requests whatever is still missing —
episodes registered without a run (`enrich-assets` CLI registration, a stopped sensor),
partitions whose run failed or was reaped as dead. An episode counts as missing when some
asset of the job has not materialized it; one that any asset is materializing right now
(its run queued or started) is left to that run. Missing episodes are requested over
contiguous ranges of at most `batch_size` (a range run covers every partition between its
ends), each run selecting the assets its episodes miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from enrich_assets.defs.jobs import enrich_episodes_job, range_tags
from enrich_assets.defs.partial_ranges import contiguous_batches
from enrich_assets.defs.partitions import episodes
from enrich_assets.infra.settings import load_settings

MATERIALIZED = dg.AssetPartitionStatus.MATERIALIZED
IN_PROGRESS = dg.AssetPartitionStatus.IN_PROGRESS


def cron_every(hours: int) -> str:
    """At minute 0 of every `hours`-th hour of the day (0:00, 6:00, 12:00, 18:00 for 6)."""
    return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"


@dataclass(frozen=True)
class MissingRange:
    """One range run: contiguous episodes and the assets any of them still misses."""

    keys: list[str]
    assets: list[dg.AssetKey]


def missing_ranges(
    instance: dg.DagsterInstance, assets: Sequence[dg.AssetKey], batch_size: int
) -> list[MissingRange]:
    """Ranges of the episodes some of `assets` has not materialized, none is materializing."""
    order = list(instance.get_dynamic_partitions(episodes.name))
    if not order:
        return []
    missing: dict[str, set[dg.AssetKey]] = {}
    busy: set[str] = set()
    for asset in assets:
        status = instance.get_status_by_partition(asset, order, episodes) or {}
        for key in order:
            state = status.get(key)
            if state == IN_PROGRESS:
                busy.add(key)
            elif state != MATERIALIZED:
                missing.setdefault(key, set()).add(asset)
    todo = [k for k in missing if k not in busy]
    ranges = []
    for batch in contiguous_batches(todo, order, batch_size):
        wanted = set().union(*(missing[k] for k in batch))
        ranges.append(MissingRange(batch, [a for a in assets if a in wanted]))
    return ranges


def job_assets(context: dg.ScheduleEvaluationContext) -> list[dg.AssetKey]:
    """The assets of `enrich_episodes`, in a stable order, as the code location defines them."""
    graph = context.repository_def.asset_graph
    return sorted(enrich_episodes_job.selection.resolve(graph))


@dg.schedule(
    job=enrich_episodes_job,
    cron_schedule=cron_every(load_settings().schedule_hours),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Range runs for the episode partitions not yet enriched (alternative to the "
    "new_episodes sensor; stopped by default).",
)
def enrich_missing(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    ranges = missing_ranges(context.instance, job_assets(context), load_settings().batch_size)
    if not ranges:
        return dg.SkipReason("every episode partition is enriched or being enriched")
    tick = context.scheduled_execution_time.isoformat()  # still missing next tick: asked again
    return [
        dg.RunRequest(
            run_key=f"{r.keys[0]}..{r.keys[-1]}@{tick}",
            asset_selection=r.assets,
            tags=range_tags(r.keys[0], r.keys[-1]),
        )
        for r in ranges
    ]
