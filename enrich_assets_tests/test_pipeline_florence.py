"""The `tiny-florence` profile through Dagster: Florence-2 detection rows and in-process
captions (no VLM client) for two episodes of the sample dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_tiny_florence_profile_detects_and_captions(
    settings, sample_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    import dagster as dg

    from enrich_assets.app.run_driver import dagster_instance, materialize_dataset
    from enrich_assets.definitions import build_definitions
    from enrich_assets.store.catalog import Catalog

    monkeypatch.setenv("ENRICH_MODEL_PROFILE", "tiny-florence")
    report = materialize_dataset(
        build_definitions(),
        settings,
        sample_root,
        select="ai_detections,ai_caption,ai_embedding,*keyframes",
        only=[0, 1],
    )
    assert report.ok, report.failures
    # random-init captions are a word or two of noise: the WARN rule on caption length says so
    failing = [c for c in report.checks_failing if c[2] != "caption_length"]
    assert not failing, failing[:3]
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    keyframes = catalog.read("keyframes")
    detections = catalog.read("ai_detections")
    assert detections.height == keyframes.height > 0
    assert detections["ai_model_id"].unique().to_list() == ["tiny-florence2:random-init"]
    assert detections["ai_model_licence"].unique().to_list() == ["none"]
    sizes = {(r["camera"], r["episode_index"], r["frame_index"]): r for r in keyframes.to_dicts()}
    for row in detections.to_dicts():
        frame = sizes[(row["camera"], row["episode_index"], row["frame_index"])]
        for det in json.loads(row["ai_detections"]):
            x0, y0, x1, y1 = det["bbox"]
            assert 0 <= x0 < x1 <= frame["tech_width"] and 0 <= y0 < y1 <= frame["tech_height"]
    captions = catalog.read("ai_caption")
    assert captions.height == keyframes.height
    assert captions["ai_model_id"].unique().to_list() == ["tiny-florence2-caption:random-init"]
    assert captions["ai_caption"].null_count() == 0
    assert catalog.read("vlm_ledger").height == 0  # no VLM call was made
    instance = dagster_instance(settings)
    metadata = {
        e.asset_materialization.asset_key.to_user_string(): e.asset_materialization.metadata
        for run_id in report.run_ids
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    }
    assert metadata["ai_detections"]["confidence"].value.startswith("none: Florence-2")
    assert metadata["ai_caption"]["model_licence"].value == "none"
