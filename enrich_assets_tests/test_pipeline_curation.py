"""Curation assets through a real Dagster instance: the golden-set gate on the demo's sample
dataset, and the validation report with its review sheet and UI plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from enrich_assets.app.cli import main
from enrich_assets.app.run_driver import dagster_instance, materialize_dataset, register_dataset
from enrich_assets.datasets.sample.generator import DEMO_EPISODES, DEMO_SEED, write_sample_dataset
from enrich_assets.definitions import build_definitions
from enrich_assets.defs.curation import REPORT_CHECKS
from enrich_assets.enrich.curation.golden_set import load_golden_set
from enrich_assets.store.catalog import Catalog
from enrich_assets_tests.conftest import reload_language_assets


def _golden_outputs(catalog: Catalog, dataset_id: str, drop_detections: int = 0) -> None:
    """Write what a perfect pipeline would have produced for the golden items (less
    `drop_detections` items' boxes), as the three tables the golden score reads."""
    golden = load_golden_set()
    items = golden.items
    keys = {
        "episode_index": [i.episode_index for i in items],
        "frame_index": [i.frame_index for i in items],
        "camera": [i.camera for i in items],
    }
    boxes = [
        [] if n < drop_detections else
        [{"label": d.labels[0], "confidence": 0.9, "bbox": list(d.box)} for d in i.detections]
        for n, i in enumerate(items)
    ]  # fmt: skip
    starts = [(e.episode_index, t) for e in golden.episodes
              for t in (0.0, *(b.timestamp for b in e.boundaries))]  # fmt: skip
    tables = {
        "ai_detections": {**keys, "ai_detections": [json.dumps(b) for b in boxes]},
        "ai_caption": {**keys, "ai_caption": [i.caption for i in items]},
        "language_plan": {
            "episode_index": [e for e, _ in starts],
            "ai_language_style": ["subtask"] * len(starts),
            "tech_timestamp": [t for _, t in starts],
        },
    }
    for table, columns in tables.items():
        catalog.write(table, dataset_id, "all", pl.DataFrame(columns))


def _score(settings) -> dg.MaterializeResult:  # noqa: ANN001
    defs = build_definitions()
    return dg.materialize(
        list(defs.assets),
        instance=dagster_instance(settings),
        resources=defs.resources,
        selection=["golden_set_score"],
        raise_on_error=False,
    )


def test_golden_gate_scores_each_version_and_rejects_a_regression(
    settings, tmp_path: Path, monkeypatch, capsys
):

    from enrich_assets.infra.prompts import PROMPTS_DIR

    root = write_sample_dataset(tmp_path / "demo", episodes=DEMO_EPISODES, seed=DEMO_SEED)
    reg = register_dataset(settings, dagster_instance(settings), root)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    _golden_outputs(catalog, reg.dataset_id)

    first = _score(settings)
    check = first.get_asset_check_evaluations()[0]
    assert first.success and check.passed
    meta = first.asset_materializations_for_node("golden_set_score")[0].metadata
    assert meta["detection_recall"].value == 1.0 and meta["boundary_f1"].value == 1.0
    assert meta["caption_object_recall"].value == 1.0

    # a new pipeline version (an edited prompt) whose detector lost a third of the items
    prompts = Path(shutil.copytree(PROMPTS_DIR, tmp_path / "prompts"))
    (prompts / "caption.md").write_text((prompts / "caption.md").read_text() + "\nBe brief.\n")
    monkeypatch.setenv("ENRICH_PROMPTS_DIR", str(prompts))
    reload_language_assets()
    _golden_outputs(catalog, reg.dataset_id, drop_detections=len(load_golden_set().items) // 3)
    second = _score(settings)
    assert main(["report", "--dataset", str(root)]) == 1  # the CLI says the same
    out = capsys.readouterr().out
    monkeypatch.delenv("ENRICH_PROMPTS_DIR")
    reload_language_assets()
    check = second.get_asset_check_evaluations()[0]
    assert not check.passed
    assert "detection_recall fell from 1.000" in check.description
    assert "caption_object_recall" not in check.description  # unchanged metrics not named
    assert "golden set gate: REJECTED: detection_recall fell from 1.000" in out
    assert "validation report: " in out
    history = catalog.read("golden_scores", reg.dataset_id)
    assert history["pipeline_version"].n_unique() == 2
    assert set(history.filter(~pl.col("passed_gate"))["metric"]) == set(history["metric"])


@pytest.mark.timeout(900)
def test_validation_report_beside_the_dataset_with_review_sheet_and_plots(
    settings, sample_root: Path, tmp_path: Path, monkeypatch
):
    root = Path(shutil.copytree(sample_root, tmp_path / "sample"))
    config = tmp_path / "settings.yaml"  # a second VLM: the local stub under another name
    config.write_text("vlm_secondary: {backend: local-stub, model: second-vlm}\n")
    monkeypatch.setenv("ENRICH_SETTINGS", str(config))
    select = "+key:validation_report"
    report = materialize_dataset(build_definitions(), settings, root, select=select)
    assert report.ok, (report.failed_runs, report.failures)
    reports = list((root / "meta" / "enrich_reports").glob("*/validation_report.json"))
    assert len(reports) == 1
    content = json.loads(reports[0].read_text())
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    keyframes = catalog.read("keyframes")
    assert content["counts"]["keyframes"] == keyframes.height
    agreement = content["agreement"]
    assert agreement["secondary_model"] == "second-vlm:local-stub" and agreement["n"] > 0
    html = (reports[0].parent / "review.html").read_text()
    assert html.count("data:image/jpeg;base64") == min(200, keyframes.height)
    instance = dagster_instance(settings)
    event = instance.get_latest_materialization_event(dg.AssetKey("validation_report"))
    metadata = event.asset_materialization.metadata
    for plot in ("embedding_map", "cluster_sizes", "quality_histogram"):
        assert metadata[plot].value.startswith(f"![{plot}](data:image/png;base64,")
    keys = [dg.AssetCheckKey(dg.AssetKey("validation_report"), r) for r in REPORT_CHECKS]
    executed = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    assert {k.name for k, record in executed.items() if record.event is not None} == set(
        REPORT_CHECKS
    )


def test_export_dataset_job_with_config_writes_the_selected_episodes(
    settings, sample_root: Path, tmp_path: Path
):
    defs = build_definitions()
    assert materialize_dataset(defs, settings, sample_root, select="+key:tech_quality").ok
    out = tmp_path / "curated"
    config = {"dataset": str(sample_root), "out": str(out), "where": "episode_index IN (1, 4)"}
    result = defs.get_job_def("export_dataset").execute_in_process(
        run_config={"ops": {"export_selected_episodes": {"config": config}}},
        instance=dagster_instance(settings),
    )
    assert result.success
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["total_episodes"] == 2
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert event.event_specific_data.metadata["source_episodes"].value == [1, 4]
