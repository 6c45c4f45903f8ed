"""The graph materialized for real: a Dagster instance on disk, real files, real decoding."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from enrich_assets.app.run_driver import dagster_instance, materialize_dataset
from enrich_assets.defs.partitions import episodes
from enrich_assets.infra.schema import load_yaml, schemas_dir
from enrich_assets.store.catalog import Catalog

REPO = Path(__file__).resolve().parents[1]


def _defs():  # noqa: ANN202 - built after the test's settings are in the environment
    from enrich_assets.definitions import build_definitions

    return build_definitions()


def _catalog(settings) -> Catalog:  # noqa: ANN001
    return Catalog(settings.catalog_dir, settings.duckdb_path)


def test_definitions_load_and_validate(settings) -> None:  # noqa: ANN001
    defs = _defs()
    graph = defs.resolve_asset_graph()
    names = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"episode_manifest", "keyframes", "tech_quality"} <= names
    assert {c.name for c in graph.asset_check_keys} >= {
        "keyframe_per_camera",
        "quality_in_unit_range",
    }
    out = subprocess.run(
        [str(REPO / ".venv/bin/dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DAGSTER_HOME": str(dagster_instance(settings).root_directory)},
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_sample_dataset_end_to_end_and_idempotent(settings, sample_root: Path) -> None:  # noqa: ANN001
    defs = _defs()
    # the writeback would write into the shared session fixture; it has its own test
    everything = "not group:writeback"
    report = materialize_dataset(defs, settings, sample_root, select=everything)
    assert report.ok, report.failures
    assert report.runs == 2  # one range run for all six episodes, then one for derived assets
    assert report.summary["tech_quality"]["ok"] == 6
    keyframes = _catalog(settings).read("keyframes")
    assert keyframes.height == 6 * 2 * 5  # 6 episodes, 2 cameras, 5 keyframes
    again = materialize_dataset(defs, settings, sample_root, select=everything)
    assert again.ok and _catalog(settings).read("keyframes").height == keyframes.height
    instance = dagster_instance(settings)
    keys = instance.get_dynamic_partitions(episodes.name)
    status = instance.get_status_by_partition(dg.AssetKey("tech_quality"), keys, episodes)
    assert set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}


@pytest.mark.parametrize("name", ["g1_v30", "g1_v21"])
def test_real_fixture_end_to_end(settings, real_copy, name: str) -> None:  # noqa: ANN001
    report = materialize_dataset(_defs(), settings, real_copy(name))
    assert report.ok, report.failures
    quality = _catalog(settings).read("tech_quality")
    assert quality.height == 8 * 5 and quality["episode_index"].n_unique() == 8
    manifest = _catalog(settings).read("episode_manifest")
    assert sorted(manifest["tech_length"].to_list()) == sorted(
        [393, 343, 357, 368, 410, 445, 290, 421]
    )


def test_one_bad_episode_fails_alone(settings, real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    video = root / "videos/chunk-000/observation.images.cam_high/episode_000002.mp4"
    video.write_bytes(video.read_bytes()[:20000])
    report = materialize_dataset(_defs(), settings, root)
    assert not report.ok
    failed = {(a, ep) for a, ep, s, _ in report.failures if s == "failed"}
    assert failed == {("episode_manifest", 2)}
    message = next(m for a, ep, s, m in report.failures if s == "failed")
    assert "episode_000002.mp4" in message
    # the range run stopped at the failed step; a follow-up range ran the good episodes on
    assert report.runs >= 2 and not report.failed_runs
    assert set(_catalog(settings).read("tech_quality")["episode_index"].to_list()) == {
        0,
        1,
        3,
        4,
        5,
        6,
        7,
    }
    instance = dagster_instance(settings)
    keys = instance.get_dynamic_partitions(episodes.name)
    status = instance.get_status_by_partition(dg.AssetKey("episode_manifest"), keys, episodes)
    assert status[keys[2]] == dg.AssetPartitionStatus.FAILED
    assert status[keys[3]] == dg.AssetPartitionStatus.MATERIALIZED
    downstream = instance.get_status_by_partition(dg.AssetKey("tech_quality"), keys, episodes)
    assert downstream[keys[2]] != dg.AssetPartitionStatus.MATERIALIZED
    assert {downstream[k] for i, k in enumerate(keys) if i != 2} == {
        dg.AssetPartitionStatus.MATERIALIZED
    }
    # the reason is attached to the failed partition itself
    reason = instance.fetch_observations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("episode_manifest"), asset_partitions=[keys[2]]
        ),
        limit=1,
    ).records[0]
    assert "episode_000002.mp4" in reason.asset_observation.metadata["error"].value


def test_a_failing_check_really_fails(
    settings, sample_root: Path, tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001
    schemas = Path(shutil.copytree(schemas_dir(), tmp_path / "schemas"))
    pipeline = yaml.safe_load((schemas / "pipeline.yaml").read_text())
    pipeline["quality"]["weights"] = {"sharpness": 3.0, "exposure": -1.0, "completeness": -1.0}
    (schemas / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    monkeypatch.setenv("ENRICH_SCHEMAS_DIR", str(schemas))
    load_yaml.cache_clear()
    try:
        defs = _defs()
        report = materialize_dataset(defs, settings, sample_root, only=[0])
        failing = {(a, rule) for a, _, rule, _ in report.checks_failing}
        assert ("tech_quality", "quality_in_unit_range") in failing
        instance = dagster_instance(settings)
        check = dg.AssetCheckKey(dg.AssetKey("tech_quality"), "quality_in_unit_range")
        evaluation = instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[
            check
        ]
        assert evaluation.status.value == "FAILED"
    finally:
        load_yaml.cache_clear()


def test_quarantined_upstream_is_skipped_not_failed(settings, sample_root: Path) -> None:  # noqa: ANN001
    from enrich_assets.infra.schema import to_table

    defs = _defs()
    materialize_dataset(defs, settings, sample_root, select="episode_manifest,keyframes")
    catalog = _catalog(settings)
    row = {
        "dataset_id": "sample",
        "episode_index": 1,
        "asset": "keyframes",
        "rule": "keyframe_per_camera",
        "severity": "ERROR",
        "passed": False,
        "message": "planted",
        "code_version": "",
        "run_id": "t",
        "created_at": None,
    }
    catalog.write("validation", "sample", "keyframes-000001", to_table("validation", [row]))
    report = materialize_dataset(defs, settings, sample_root, select="tech_quality")
    assert report.ok  # quarantine is not failure
    assert report.summary["tech_quality"] == {"ok": 5, "failed": 0, "quarantined": 1}
    assert 1 not in set(catalog.read("tech_quality")["episode_index"].to_list())
    # Dagster agrees per partition: the quarantined episode is not materialized, the rest
    # are, and the batch's check evaluation did not pass (one episode went unchecked)
    instance = dagster_instance(settings)
    keys = instance.get_dynamic_partitions(episodes.name)
    status = instance.get_status_by_partition(dg.AssetKey("tech_quality"), keys, episodes)
    assert status[keys[1]] != dg.AssetPartitionStatus.MATERIALIZED
    assert {status[k] for i, k in enumerate(keys) if i != 1} == {
        dg.AssetPartitionStatus.MATERIALIZED
    }
    check = dg.AssetCheckKey(dg.AssetKey("tech_quality"), "quality_row_count")
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[check]
    assert latest.status.value == "FAILED"
    evaluation = latest.event.dagster_event.event_specific_data
    assert evaluation.metadata["episodes_not_checked"].value == 1
