"""The batched SQLite event log (app/event_log.py) leaves Dagster's state as its own storage does.

Two real Dagster instances on SQLite, one with Dagster's own event log and one with the
batched one (as the CLI seeds it), run the same two range runs of a partitioned asset built
like the episode assets (defs/per_episode.py): one run where partition c fails (a
materialization per good partition, an observation on the bad one, then a step failure), and
one where every partition succeeds (one result for the range). Dagster's own reads must then
agree: partition status, each partition's materializations and their tags, observations, the
asset's latest materialization and last run. And in the good run (20 partitions: their planned
and materialized events come to the storage as batches) the batched instance must open far
fewer SQLite connections (the point of it; the failed run's per-partition events are yielded
one by one by the asset, so Dagster hands them over one at a time).
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from enrich_assets.app.event_log import BatchedSqliteEventLogStorage, event_log_config
from enrich_assets.defs.jobs import range_tags

KEYS = [f"p{i:02d}" for i in range(24)]
PARTS = dg.StaticPartitionsDefinition(KEYS)
BAD = "p03"


@dg.asset(
    partitions_def=PARTS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    output_required=False,
    dagster_type=dg.Nothing,
    code_version="v1",
    check_specs=[dg.AssetCheckSpec("rows_ok", asset="rows")],
)
def rows(
    context: dg.AssetExecutionContext,
) -> Iterator:  # no __future__ annotations: Dagster reads them
    keys = context.partition_keys
    if context.run.tags.get("fail") != "yes":
        yield dg.MaterializeResult(
            metadata={"episodes": len(keys)},
            check_results=[dg.AssetCheckResult(check_name="rows_ok", passed=True)],
        )
        return
    for key in keys:
        if key == BAD:
            yield dg.AssetObservation(
                asset_key=context.asset_key, partition=key, metadata={"status": "failed"}
            )
        else:
            yield dg.AssetMaterialization(
                asset_key=context.asset_key,
                partition=key,
                metadata={"rows": 3},
                tags={"dagster/code_version": "v1"},
            )
    yield dg.AssetCheckResult(check_name="rows_ok", passed=False)
    raise dg.Failure(description=f"{BAD} failed", allow_retries=False)


def _instance(home: Path, batched: bool) -> dg.DagsterInstance:
    home.mkdir(parents=True)
    config = {"telemetry": {"enabled": False}, **(event_log_config(home) if batched else {})}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(home))


def _state(instance: dg.DagsterInstance) -> dict:
    key = rows.key
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=100)
    observations = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=key), limit=100)
    latest = instance.get_latest_materialization_event(key)
    record = instance.get_asset_records([key])[0].asset_entry
    runs = {r.run_id: r.tags.get("fail", "no") for r in instance.get_runs()}
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(key, "rows_ok"), limit=100
    )
    return {
        "status": instance.get_status_by_partition(key, KEYS, PARTS),
        "materialized": sorted(instance.get_materialized_partitions(key)),
        "materializations": sorted(
            (
                r.partition_key,
                runs[r.run_id],
                r.asset_materialization.tags.get("dagster/code_version"),
            )
            for r in records.records
        ),
        "observations": sorted((r.partition_key, runs[r.run_id]) for r in observations.records),
        "latest": (latest.dagster_event.partition, runs[latest.run_id]),
        "last_run": runs[record.last_run_id],
        "last_recorded": record.last_materialization_record.partition_key,
        "checks": sorted((runs[c.run_id], c.status.value, c.partition) for c in checks),
    }


@contextmanager
def _connections(base_dir: Path) -> Iterator[list[str]]:
    """Every SQLite connection opened on a file under base_dir while the block runs (the
    listener is global to SQLAlchemy, so it is removed after: later tests use PostgreSQL)."""
    opened: list[str] = []

    def count(dbapi_connection, _record) -> None:  # noqa: ANN001
        if isinstance(dbapi_connection, sqlite3.Connection):
            path = dbapi_connection.execute("PRAGMA database_list").fetchone()[2]
            if path.startswith(str(base_dir)):
                opened.append(path)

    sa.event.listen(sa.engine.Engine, "connect", count)
    try:
        yield opened
    finally:
        sa.event.remove(sa.engine.Engine, "connect", count)


def test_batched_event_log_matches_dagsters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # as the run driver sets it
    states, connections = {}, {}
    for batched in (False, True):
        home = tmp_path / ("batched" if batched else "dagster")
        with _instance(home, batched) as instance:
            storage = instance.event_log_storage
            assert isinstance(storage, BatchedSqliteEventLogStorage) == batched
            failed = dg.materialize(
                [rows],
                instance=instance,
                tags={**range_tags(KEYS[0], KEYS[-1]), "fail": "yes"},
                raise_on_error=False,
            )
            assert not failed.success
            with _connections(home) as opened:
                good = dg.materialize([rows], instance=instance, tags=range_tags(KEYS[4], KEYS[-1]))
            assert good.success
            connections[batched] = len(opened)
            states[batched] = _state(instance)

    dagster, batched = states[False], states[True]
    assert batched == dagster
    # what the comparison rests on: the failed partition is failed, the rest materialized
    assert batched["status"][BAD] == dg.AssetPartitionStatus.FAILED
    assert batched["materialized"] == [k for k in KEYS if k != BAD]
    assert batched["observations"] == [(BAD, "yes")]
    assert (KEYS[4], "no", "v1") in batched["materializations"]
    assert ("no", "SUCCEEDED", None) in batched["checks"]
    assert batched["last_recorded"] in KEYS[4:]  # Dagster keeps the last one it stored
    assert connections[True] < connections[False] / 2, connections
    print(connections)
