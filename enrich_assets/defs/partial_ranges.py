"""Finish what a partly failed range run left: the good episodes' downstream assets.

When one episode of a range run fails, its step materializes only the good partitions and
fails (see defs/per_episode.py), so Dagster skips the downstream steps of the whole range.
The work left is read from Dagster itself (which asset partitions the run materialized)
and the catalog (which episodes failed or were quarantined in it), and requested again over
contiguous ranges of the good episodes. The CLI's run driver and the `finish_partial_ranges`
sensor (for runs launched from the UI, a backfill, a sensor or automation) share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

from enrich_assets.defs.jobs import enrich_episodes_job, range_tags
from enrich_assets.defs.partitions import episodes
from enrich_assets.infra.partition_keys import parse_partition_key, partition_key
from enrich_assets.infra.settings import load_settings
from enrich_assets.store.catalog import Catalog
from enrich_assets.store.episode_log import STATUS

FOLLOW_UP_DEPTH_TAG = "enrich/follow_up_depth"
MAX_FOLLOW_UPS = 6  # deeper than the longest per-episode chain of assets


@dataclass(frozen=True)
class LeftOver:
    """Assets still to run for episodes that did not fail: one range run selection."""

    assets: list[dg.AssetKey]
    keys: list[str]


def materialized_by(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(asset, partition) pairs the runs materialized."""
    done: set[tuple[str, str]] = set()
    for run_id in run_ids:
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        for record in records:
            entry = record.event_log_entry
            mat = entry.asset_materialization
            if mat is not None and mat.partition is not None:
                done.add((mat.asset_key.to_user_string(), mat.partition))
    return done


def failed_in(catalog: Catalog, run_ids: Sequence[str], keys: Sequence[str]) -> set[str]:
    """Episodes of `keys` that some asset failed or quarantined in the runs."""
    if not run_ids:
        return set()
    wanted = set(keys)
    ids = ", ".join(f"'{r}'" for r in run_ids)
    bad: set[str] = set()
    for dataset_id in {parse_partition_key(k)[0] for k in keys}:
        rows = catalog.read(STATUS, dataset_id, where=f"run_id IN ({ids}) AND status <> 'ok'")
        for ep in rows["episode_index"].to_list() if rows.height else []:
            bad.add(partition_key(dataset_id, ep))
    return bad & wanted


def left_over(
    instance: dg.DagsterInstance,
    catalog: Catalog,
    run_ids: Sequence[str],
    assets: Sequence[dg.AssetKey],
    keys: Sequence[str],
) -> LeftOver:
    """What of `assets` × `keys` the runs neither materialized nor failed on."""
    done = materialized_by(instance, run_ids)
    bad = failed_in(catalog, run_ids, keys)
    todo = [
        (a, k) for a in assets for k in keys if k not in bad and (a.to_user_string(), k) not in done
    ]
    todo_assets = {a for a, _ in todo}
    todo_keys = {k for _, k in todo}
    return LeftOver([a for a in assets if a in todo_assets], [k for k in keys if k in todo_keys])


def contiguous_batches(keys: Sequence[str], order: Sequence[str], size: int) -> list[list[str]]:
    """Split `keys` into runs of neighbours in the partition order, at most `size` each.

    A range run covers every partition between its ends, so a gap starts a new batch.
    """
    position = {k: i for i, k in enumerate(order)}
    batches: list[list[str]] = []
    for key in sorted(keys, key=position.__getitem__):
        last = batches[-1][-1] if batches else None
        if last is not None and position[key] == position[last] + 1 and len(batches[-1]) < size:
            batches[-1].append(key)
        else:
            batches.append([key])
    return batches


def _range_keys(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    first = run.tags.get("dagster/asset_partition_range_start")
    last = run.tags.get("dagster/asset_partition_range_end")
    single = run.tags.get("dagster/partition")
    order = list(instance.get_dynamic_partitions(episodes.name))
    if first and last and first in order and last in order:
        return order[order.index(first) : order.index(last) + 1]
    return [single] if single else []


@dg.run_failure_sensor(
    request_job=enrich_episodes_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def finish_partial_ranges(context: dg.RunFailureSensorContext) -> Iterable[dg.RunRequest]:
    """After a range run in which some episodes failed, run the good episodes' downstream."""
    run = context.dagster_run
    depth = int(run.tags.get(FOLLOW_UP_DEPTH_TAG, "0"))
    selection = run.asset_selection or set()
    keys = _range_keys(context.instance, run)
    if depth >= MAX_FOLLOW_UPS or not selection or len(keys) < 2:
        return
    settings = load_settings()
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    if not failed_in(catalog, [run.run_id], keys):
        return  # the run failed as a whole (not episode by episode): nothing to finish
    rest = left_over(context.instance, catalog, [run.run_id], sorted(selection), keys)
    order = list(context.instance.get_dynamic_partitions(episodes.name))
    for batch in contiguous_batches(rest.keys, order, max(len(keys), 1)):
        yield dg.RunRequest(
            run_key=f"{run.run_id}:{batch[0]}",
            asset_selection=rest.assets,
            tags={**range_tags(batch[0], batch[-1]), FOLLOW_UP_DEPTH_TAG: str(depth + 1)},
        )
