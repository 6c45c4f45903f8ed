"""Derived assets, search and export through Dagster and the CLI, on the sample dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from PIL import Image

from enrich_assets.app.cli import main
from enrich_assets.app.run_driver import materialize_dataset
from enrich_assets.store.catalog import Catalog
from enrich_assets.store.episode_view import episode_view
from enrich_assets.store.images import load_image

DERIVED = "ai_semantic_cluster,ai_near_duplicates,ai_episode_diversity,ai_search_index"


def _states(root: Path) -> dict[int, np.ndarray]:
    table = pq.read_table(root / "data", columns=["episode_index", "observation.state"])
    frame = pl.from_arrow(table)
    return {
        int(e): np.asarray(g["observation.state"].to_list(), np.float32)
        for (e,), g in frame.group_by("episode_index")
    }


def test_derived_search_and_export(settings, sample_root: Path, capsys) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions

    report = materialize_dataset(
        build_definitions(), settings, sample_root, select=f"*ai_embedding,tech_quality,{DERIVED}"
    )
    assert report.ok, (report.failures, report.failed_runs)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    keyframes = catalog.read("keyframes")

    clusters = catalog.read("ai_semantic_cluster")
    assert clusters.height == keyframes.height == 60
    assert clusters["ai_cluster_id"].min() >= 0 and clusters["ai_cluster_version"].n_unique() == 1
    assert (settings.data_dir / "clusters" / "sample" / "model.npz").is_file()
    # a second run assigns with the stored model (no drift on the same rows): same version
    again = materialize_dataset(build_definitions(), settings, sample_root, "ai_semantic_cluster")
    assert again.ok and again.runs == 1
    relabelled = catalog.read("ai_semantic_cluster")
    assert relabelled["ai_cluster_version"].to_list() == clusters["ai_cluster_version"].to_list()
    assert relabelled["run_id"][0] != clusters["run_id"][0]

    truth = json.loads((sample_root / "meta" / "sample_truth.json").read_text())
    planted = truth["defects"]["near_duplicate"]
    dups = catalog.read("ai_near_duplicates")
    assert dups.height == 60
    copy = dups.filter(pl.col("episode_index") == planted["episode_index"])
    assert copy["ai_is_duplicate_episode"].all()
    assert (copy["ai_duplicate_of_episode"] == planted["source_episode_index"]).all()
    original = dups.filter(pl.col("episode_index") == planted["source_episode_index"])
    assert not original["ai_is_duplicate_episode"].any()

    diversity = catalog.read("ai_episode_diversity").sort("episode_index")
    assert diversity["episode_index"].to_list() == list(range(6))
    assert diversity["ai_diversity"].is_between(0, 2).all()
    assert sorted(diversity["ai_diversity_percentile"].to_list())[::5] == [0.0, 100.0]
    # vision + trajectory: the planted copy's most similar demonstration is its source
    row = diversity.row(planted["episode_index"], named=True)
    assert row["ai_repeat_of_episode"] == planted["source_episode_index"]
    assert row["ai_repeat_similarity"] == diversity["ai_repeat_similarity"].max()

    assert catalog.read("ai_search_index")["ai_search_id"].sort().to_list() == list(range(60))
    assert main(["search", "a red cube on a table", "--dataset", str(sample_root), "--k", "5"]) == 0
    out = capsys.readouterr().out
    assert "5 hits in sample" in out
    sheet = Path(out.split("contact sheet: ")[1].strip())
    assert Image.open(sheet).size == (4 * 96, 2 * 96)
    # an example image finds itself first
    first = keyframes.sort("episode_index", "camera", "frame_index").row(7, named=True)
    image = settings.data_dir.parent / "query.png"  # a person's picture file, from the cache
    Image.fromarray(load_image(settings.artifact_dir, first["tech_image_path"])).save(image)
    assert main(["search", "--image", str(image), "--dataset", str(sample_root), "--k", "1"]) == 0
    best = capsys.readouterr().out.splitlines()[2].split()
    assert (int(best[0]), int(best[1]), best[2]) == (
        first["episode_index"],
        first["frame_index"],
        first["camera"],
    )

    everything = settings.data_dir.parent / "export_all"
    assert main(["export", "--dataset", str(sample_root), "--out", str(everything)]) == 0
    reingest = materialize_dataset(
        build_definitions(), settings, everything, select="episode_manifest"
    )
    assert reingest.ok and reingest.episodes == 6
    source_states = _states(sample_root)
    assert all(np.array_equal(s, source_states[e]) for e, s in _states(everything).items())

    kept = settings.data_dir.parent / "export_kept"
    where = "not is_duplicate_episode and tech_quality_score > 0"
    assert (
        main(["export", "--dataset", str(sample_root), "--out", str(kept), "--where", where]) == 0
    )
    info = json.loads((kept / "meta" / "info.json").read_text())
    line = [x for x in capsys.readouterr().out.splitlines() if "selected: " in x][-1]
    chosen = json.loads(line.split("selected: ")[1])
    assert 0 < info["total_episodes"] == len(chosen) < 6
    assert planted["episode_index"] not in chosen
    # renumbered 0..n-1, each episode's state copied from its source episode
    states = _states(kept)
    assert sorted(states) == list(range(len(chosen)))
    assert all(np.array_equal(states[i], source_states[e]) for i, e in enumerate(chosen))


def test_episode_view_without_enrichment_tables(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog", tmp_path / "x.duckdb")
    episodes = pl.DataFrame({"episode_index": [0, 1, 2], "length": [10, 20, 30]})
    view = episode_view(catalog, "none", episodes, "true")
    assert view["episode_index"].to_list() == [0, 1, 2]
    assert not view["is_duplicate_episode"].any()
    assert view["tech_quality_score"].null_count() == 3
    assert episode_view(catalog, "none", episodes, "length > 15")["episode_index"].to_list() == [
        1,
        2,
    ]
