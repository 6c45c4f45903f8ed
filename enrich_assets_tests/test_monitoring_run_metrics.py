"""Run metrics from real runs: a `run_metrics` row per run and asset in the catalog and the
DuckDB file, the same figures in materialization metadata, and the alert checks evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np

from enrich_assets.app.run_driver import dagster_instance, materialize_dataset
from enrich_assets.store.catalog import Catalog

ASSETS = ["episode_manifest", "keyframes", "tech_quality", "ai_embedding"]


def test_a_run_records_its_metrics_row_metadata_and_alert_checks(
    settings, sample_root: Path
) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions

    report = materialize_dataset(
        build_definitions(), settings, sample_root, select=",".join(ASSETS), only=[0, 1, 2]
    )
    assert report.ok, report.failures
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    rows = {r["asset"]: r for r in catalog.read("run_metrics").to_dicts()}
    assert sorted(rows) == sorted(ASSETS)  # one row per asset of the (single) range run

    keyframes = catalog.read("keyframes")
    quality = catalog.read("tech_quality")
    assert rows["keyframes"]["frames"] == keyframes.height > 0
    assert rows["episode_manifest"]["frames"] == 0 and rows["episode_manifest"]["rows"] > 0
    assert all(r["episodes"] == 3 and r["episodes_not_written"] == 0 for r in rows.values())

    q = rows["tech_quality"]
    scores = quality["tech_quality_score"].to_numpy()
    assert q["quality_n"] == len(scores)
    assert abs(q["quality_mean"] - scores.mean()) < 1e-5
    assert abs(q["quality_p50"] - np.median(scores)) < 1e-5
    assert sum(json.loads(q["quality_histogram"])) == len(scores)

    emb = rows["ai_embedding"]
    assert emb["models"] and emb["models"].endswith(":random-init")
    assert emb["batches"] >= 1 and 0 < emb["latency_p50_s"] <= emb["latency_p95_s"]
    assert json.loads(emb["latency_by_model"])[emb["models"]]["batches"] == emb["batches"]
    assert emb["api_requests"] == 0 and emb["api_error_rate"] is None and emb["cost_usd"] == 0

    # the views file the CLI refreshes has the table (what `make demo` leaves behind)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        assert conn.execute("select count(*) from run_metrics").fetchone()[0] == len(ASSETS)

    # the same figures in Dagster, per materialization, so the UI plots them over time
    instance = dagster_instance(settings)
    event = instance.get_latest_materialization_event(dg.AssetKey("tech_quality"))
    assert event is not None
    metadata = event.asset_materialization.metadata
    assert metadata["frames"].value == q["frames"]
    assert metadata["quality_mean"].value == q["quality_mean"]
    emb_meta = instance.get_latest_materialization_event(dg.AssetKey("ai_embedding"))
    assert emb_meta.asset_materialization.metadata["latency_p95_s"].value == emb["latency_p95_s"]

    # the alert checks ran with the run, with their severities from the settings
    for asset, check, severity in [
        ("tech_quality", "alert_quality_drop", "WARN"),
        ("tech_quality", "alert_no_frames", "ERROR"),
        ("keyframes", "alert_no_frames", "ERROR"),
    ]:
        key = dg.AssetCheckKey(dg.AssetKey(asset), check)
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
        evaluation = record.event.dagster_event.event_specific_data
        assert evaluation.passed, (asset, check, evaluation.description)
        assert evaluation.severity == dg.AssetCheckSeverity(severity)


def test_a_run_whose_vlm_calls_fail_trips_the_error_rate_check(
    settings, sample_root: Path, tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001
    """The VLM endpoint is down (a closed port on 127.0.0.1): every caption request fails
    after its one attempt, the run's error rate is 100 %, and `alert_error_rate` fails with
    the severity the settings give it."""
    import socket

    import yaml

    from enrich_assets.definitions import build_definitions

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    upstream = "episode_manifest,keyframes,ai_embedding"
    assert materialize_dataset(build_definitions(), settings, sample_root, upstream, [0, 1]).ok
    path = tmp_path / "settings.yaml"
    vlm = {"backend": "openai", "model": "gpt-4o", "base_url": f"http://127.0.0.1:{port}/v1",
           "timeout_s": 2, "retry": {"max_attempts": 1}}  # fmt: skip
    path.write_text(yaml.safe_dump({"vlm": vlm, "alerts": {"error_rate": {"severity": "WARN"}}}))
    monkeypatch.setenv("ENRICH_SETTINGS", str(path))
    report = materialize_dataset(build_definitions(), settings, sample_root, "ai_caption", [0, 1])
    assert not report.ok

    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    caption = catalog.read("run_metrics", where="asset = 'ai_caption'").to_dicts()
    assert caption and all(r["api_requests"] > 0 for r in caption)
    assert {r["api_error_rate"] for r in caption} == {1.0}
    assert {r["frames"] for r in caption} == {0}

    instance = dagster_instance(settings)
    key = dg.AssetCheckKey(dg.AssetKey("ai_caption"), "alert_error_rate")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = record.event.dagster_event.event_specific_data
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "100.0% of" in evaluation.description
