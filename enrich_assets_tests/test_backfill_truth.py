"""A backfill launched as the UI does, run by Dagster's own daemons, with one damaged episode.

What runs for real: a Dagster instance in tmp (SQLite storage; the synchronous run
coordinator and launcher, so a launched run executes in this process), the code location
`enrich_assets.definitions` loaded through a workspace, an asset backfill of
episode_manifest, keyframes and tech_quality over every episode of a six-episode sample
dataset whose episode 2 has a truncated video, the backfill daemon's own iteration
(`execute_backfill_iteration`) until the backfill is done, and then the sensor daemon's own
iteration (`execute_sensor_iteration`), which evaluates `finish_partial_ranges` against the
failed run and launches the run requests it returns.

The assertions read Dagster's own state: the backfill's status and subsets, partition
status (`instance.get_status_by_partition`), the observation on the failed partition, asset
check execution records and evaluation events, and the runs the sensor launched.

Two deliberate choices, neither forced by Dagster 1.13:
* The backfill carries run config selecting the in-process executor (the UI's backfill
  dialog accepts run config too): the default multiprocess executor spawns one interpreter
  per step, each importing the code location (~15 s on this machine). The follow-up runs
  the sensor launches carry no run config, so they run with the default (multiprocess)
  executor, as in a deployment; they are most of this test's ~2.5 minutes.
* The sensor's first tick (which only initialises a run-status sensor's cursor, skipping
  runs that failed before it started) runs with Dagster's clock set two minutes back, so
  that its second tick, after the backfill, is past `minimum_interval_seconds` without
  waiting.

What cannot be observed in this scenario: the checks of keyframes and tech_quality are
never evaluated in the failed backfill run (their steps are skipped because
episode_manifest's step failed, and episode_manifest declares only its run-level alert
check). So "no check passed for the batch that contained the failure" is asserted as: the
run has no evaluation of those checks, and each one's execution record for that run stays
PLANNED in a failed run (which Dagster shows as EXECUTION_FAILED, never SUCCEEDED). The
follow-up runs' checks, over good episodes only, are asserted SUCCEEDED.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.instance_for_test import instance_for_test
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._time import get_current_datetime

from enrich_assets.app.run_driver import register_dataset
from enrich_assets.defs.partial_ranges import FOLLOW_UP_DEPTH_TAG
from enrich_assets.defs.partitions import episodes
from enrich_assets_tests.backfills import add_backfill

REPO = Path(__file__).resolve().parents[1]
ASSETS = [dg.AssetKey(n) for n in ("episode_manifest", "keyframes", "tech_quality")]
MANIFEST, KEYFRAMES, QUALITY = ASSETS
BAD = 2  # the episode whose video is truncated
MAT = dg.AssetPartitionStatus.MATERIALIZED
FAILED = dg.AssetPartitionStatus.FAILED
log = logging.getLogger(__name__)


@pytest.fixture
def damaged_sample(tmp_path: Path) -> Path:
    """Six episodes, one video file per episode and camera; episode 2's top camera truncated."""
    from enrich_assets.datasets.lerobot.v3_writer import FileLimits
    from enrich_assets.datasets.sample.generator import write_sample_dataset

    root = write_sample_dataset(
        tmp_path / "sample",
        episodes=6,
        seed=0,
        width=96,
        height=64,
        frames_per_episode=(24, 32),
        limits=FileLimits(episodes_per_file=1),
    )
    video = root / f"videos/observation.images.top/chunk-000/file-{BAD:03d}.mp4"
    video.write_bytes(video.read_bytes()[:4000])
    return root


@pytest.fixture
def code_location(settings) -> Iterator[InProcessWorkspaceLoadTarget]:  # noqa: ANN001
    """The code location `enrich_assets.definitions`, loaded in this process.

    Its PipelineResource reads settings from the environment when the module is imported:
    import it again now that the test's settings are in place (and put back the old `defs`
    afterwards, for the tests that run later in this process)."""
    import enrich_assets.definitions as module

    before = module.defs
    importlib.reload(module)
    origin = LoadableTargetOrigin(
        module_name="enrich_assets.definitions", attribute="defs", working_directory=str(REPO)
    )
    try:
        yield InProcessWorkspaceLoadTarget(
            InProcessCodeLocationOrigin(origin, location_name="enrich_assets")
        )
    finally:
        module.defs = before


def _tick_sensors(workspace) -> None:  # noqa: ANN001
    list(execute_sensor_iteration(workspace, log, None, None))


def _run_backfill(workspace, instance: dg.DagsterInstance, keys: list[str]) -> str:  # noqa: ANN001
    backfill = add_backfill(workspace, instance, keys, ASSETS)
    for _ in range(12):
        list(execute_backfill_iteration(workspace, log))
        status = instance.get_backfill(backfill.backfill_id).status
        if status not in (BulkActionStatus.REQUESTED, BulkActionStatus.FAILING):
            return backfill.backfill_id
    pytest.fail(f"backfill still {status} after 12 daemon iterations")


def _ranges(runs: list[dg.DagsterRun]) -> list[tuple[str, str]]:
    return sorted(
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in runs
    )


def test_backfill_with_a_damaged_episode(settings, damaged_sample: Path, code_location) -> None:  # noqa: ANN001
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    with instance_for_test(
        temp_dir=str(settings.dagster_home),
        synchronous_run_coordinator=True,
        synchronous_run_launcher=True,
    ) as instance:
        keys = register_dataset(settings, instance, damaged_sample).keys
        assert keys == list(instance.get_dynamic_partitions(episodes.name)) and len(keys) == 6
        good = [k for i, k in enumerate(keys) if i != BAD]
        bad = keys[BAD]
        with create_test_daemon_workspace_context(code_location, instance) as workspace:
            # a run-failure sensor's first tick only sets its cursor
            with freeze_time(get_current_datetime() - timedelta(minutes=2)):
                _tick_sensors(workspace)

            backfill_id = _run_backfill(workspace, instance, keys)

            # -- the backfill: one range run over all six episodes, which failed
            runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
            assert len(runs) == 1, [r.tags for r in runs]
            (run,) = runs
            assert run.status == dg.DagsterRunStatus.FAILURE
            assert run.asset_selection == set(ASSETS)
            assert _ranges(runs) == [(keys[0], keys[-1])]
            backfill = instance.get_backfill(backfill_id)
            assert backfill.status == BulkActionStatus.COMPLETED_FAILED
            data = backfill.asset_backfill_data
            done = data.materialized_subset.partitions_subsets_by_asset_key
            lost = data.failed_and_downstream_subset.partitions_subsets_by_asset_key
            assert set(done[MANIFEST].get_partition_keys()) == set(good)
            assert set(lost[MANIFEST].get_partition_keys()) == {bad}

            manifest = instance.get_status_by_partition(MANIFEST, keys, episodes)
            assert manifest[bad] == FAILED
            assert {manifest[k] for k in good} == {MAT}
            mats = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=MANIFEST, asset_partitions=[bad]), limit=1
            ).records
            assert not mats  # the failed partition was never materialized
            reason = instance.fetch_observations(
                dg.AssetRecordsFilter(asset_key=MANIFEST, asset_partitions=[bad]), limit=1
            ).records
            assert reason and reason[0].run_id == run.run_id
            metadata = reason[0].asset_observation.metadata
            assert metadata["status"].value == "failed"
            assert f"file-{BAD:03d}.mp4" in metadata["error"].value
            for asset in (KEYFRAMES, QUALITY):  # their steps never ran in the failed run
                status = instance.get_status_by_partition(asset, keys, episodes)
                assert MAT not in status.values(), (asset, status)

            # -- no check passed for the batch that contained the failure
            checks = [
                dg.AssetCheckKey(asset, name)
                for asset, names in (
                    (KEYFRAMES, ("keyframe_per_camera", "keyframe_timestamp_exact")),
                    (QUALITY, ("quality_in_unit_range", "quality_row_count")),
                )
                for name in names
            ]
            evaluations = [
                e.dagster_event.event_specific_data.asset_check_key
                for e in instance.all_logs(
                    run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
                )
            ]
            assert not set(evaluations) & set(checks), evaluations
            for check in checks:
                history = instance.event_log_storage.get_asset_check_execution_history(
                    check, limit=10
                )
                in_run = [h for h in history if h.run_id == run.run_id]
                assert [h.status for h in in_run] == [AssetCheckExecutionRecordStatus.PLANNED], (
                    check,
                    in_run,
                )

            # -- the sensor daemon: finish_partial_ranges requests the good episodes' rest
            _tick_sensors(workspace)

        follow_ups = instance.get_runs(dg.RunsFilter(tags={FOLLOW_UP_DEPTH_TAG: "1"}))
        assert _ranges(follow_ups) == [(keys[0], keys[1]), (keys[3], keys[5])]
        for follow_up in follow_ups:
            assert follow_up.asset_selection == {KEYFRAMES, QUALITY}
            assert follow_up.tags.get("dagster/sensor_name") == "finish_partial_ranges"
            assert follow_up.status == dg.DagsterRunStatus.SUCCESS

        # -- in the end: every good episode is materialized all the way, the bad one is not
        for asset in ASSETS:
            status = instance.get_status_by_partition(asset, keys, episodes)
            assert {status[k] for k in good} == {MAT}, (asset, status)
            assert status[bad] != MAT, (asset, status)
        assert instance.get_status_by_partition(MANIFEST, keys, episodes)[bad] == FAILED
        for check in checks:  # the checks of the good ranges ran, and passed
            history = instance.event_log_storage.get_asset_check_execution_history(check, limit=10)
            statuses = {h.run_id: h.status for h in history}
            assert {statuses.get(r.run_id) for r in follow_ups} == {
                AssetCheckExecutionRecordStatus.SUCCEEDED
            }, check
