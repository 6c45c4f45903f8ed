"""The production instance (deploy/dagster.postgres.yaml) on a real PostgreSQL server.

Run, event-log and schedule storage live in a fresh database of the test server; the
connection comes from DAGSTER_PG_* as in a deployment. The whole graph runs on it through the
CLI's run driver, and runs submitted to its queue (by an asset backfill, as the UI does) are
started by Dagster's own queued-run daemon iteration, through a code location served over
gRPC and the default run launcher (one process per run), within the tag concurrency limit.
The concurrent-CLI test on this instance is in test_pipeline_sensor_concurrency.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from enrich_assets.app.run_driver import dagster_instance, materialize_dataset, register_dataset
from enrich_assets_tests.backfills import add_backfill

REPO = Path(__file__).resolve().parents[1]
IN_PROGRESS = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}
log = logging.getLogger(__name__)


def test_whole_graph_on_a_postgres_instance(
    settings, postgres_home: str, sample_root: Path
) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions

    report = materialize_dataset(
        build_definitions(), settings, sample_root, select="not group:writeback"
    )
    assert report.ok, report.failures
    assert report.runs == 2 and report.summary["tech_quality"]["ok"] == 6
    with dagster_instance(settings) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
    # Dagster's own tables, read straight from the database
    engine = sa.create_engine(postgres_home)
    with engine.connect() as con:
        runs = dict(con.execute(sa.text("select run_id, status from runs")).all())
        materialized = con.execute(
            sa.text(
                "select count(distinct partition) from event_logs where "
                "dagster_event_type = 'ASSET_MATERIALIZATION' and asset_key like '%tech_quality%'"
            )
        ).scalar_one()
    engine.dispose()
    assert runs == {run_id: "SUCCESS" for run_id in report.run_ids}
    assert materialized == 6
    assert not list(settings.dagster_home.rglob("*.db")), "a SQLite file next to PostgreSQL"


def test_queued_runs_start_within_the_tag_limit(
    settings, postgres_home: str, sample_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    """Three backfill runs (two episodes each) queue; `dagster/backfill` is limited to two."""
    monkeypatch.setenv("ENRICH_BATCH_SIZE", "2")  # the code server's backfill policy: 2 per run
    with dagster_instance(settings) as instance:
        _queue_and_dequeue(settings, instance, sample_root)


def _queue_and_dequeue(settings, instance: dg.DagsterInstance, sample_root: Path) -> None:  # noqa: ANN001
    keys = register_dataset(settings, instance, sample_root).keys
    target = ModuleTarget(
        module_name="enrich_assets.definitions",
        attribute="defs",
        working_directory=str(REPO),
        location_name="enrich_assets",
    )
    with create_test_daemon_workspace_context(target, instance) as workspace:
        backfill = add_backfill(workspace, instance, keys, [dg.AssetKey("episode_manifest")])
        list(execute_backfill_iteration(workspace, log))
        tagged = dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill.backfill_id})
        submitted = instance.get_runs(tagged)
        assert len(submitted) == 3
        assert {r.status for r in submitted} == {dg.DagsterRunStatus.QUEUED}

        with QueuedRunCoordinatorDaemon(interval_seconds=1) as daemon:
            list(daemon.run_iteration(workspace))
            # two launched, the third waits (for the tag limit: max_concurrent_runs is 4)
            statuses = sorted(r.status.value for r in instance.get_runs(tagged))
            assert statuses.count("QUEUED") == 1, statuses
            deadline = time.monotonic() + 480
            while any(not r.is_finished for r in instance.get_runs(tagged)):
                assert time.monotonic() < deadline, [r.status for r in instance.get_runs(tagged)]
                running = [r for r in instance.get_runs(tagged) if r.status in IN_PROGRESS]
                assert len(running) <= 2
                list(daemon.run_iteration(workspace))
                time.sleep(1)

    records = instance.get_run_records(tagged)
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    # the third run started only once one of the first two had ended
    first, second, third = sorted(records, key=lambda r: r.start_time)
    assert third.start_time >= min(first.end_time, second.end_time)
    done = instance.get_materialized_partitions(dg.AssetKey("episode_manifest"))
    assert done == set(keys)
