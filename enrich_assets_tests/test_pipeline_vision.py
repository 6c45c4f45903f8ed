"""Vision assets through Dagster with tiny random-init models: one model load per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from enrich_assets.app.run_driver import materialize_dataset
from enrich_assets.store.catalog import Catalog


def test_vision_assets_on_sample_dataset(settings, sample_root: Path) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions

    report = materialize_dataset(
        build_definitions(),
        settings,
        sample_root,
        select="ai_embedding+,ai_detections,ai_depth,*keyframes",
    )
    assert report.ok, report.failures
    assert report.runs == 2  # the range run, then the derived assets downstream of ai_embedding
    assert not report.checks_failing, report.checks_failing[:3]
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    keyframes = catalog.read("keyframes")
    embeddings = catalog.read("ai_embedding")
    assert embeddings.height == keyframes.height == 60
    vectors = np.array(embeddings["ai_embedding"].to_list(), dtype=np.float32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert all(m.endswith(":random-init") for m in embeddings["ai_model_id"].unique().to_list())
    dups = embeddings.filter(embeddings["tech_is_near_duplicate"])
    assert dups["tech_near_dup_of"].null_count() == 0
    depth = catalog.read("ai_depth")
    assert depth.height == 60 and (depth["ai_depth_height"] == keyframes["tech_height"][0]).all()
    assert all((settings.artifact_dir / p).is_file() for p in depth["ai_depth_path"].to_list())
    detections = catalog.read("ai_detections")
    assert detections.height == 60
