"""Derived assets on a growing dataset, through Dagster: a run after new episodes reads and
searches only their keyframes, and ends where a from-scratch rebuild ends."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pyarrow.parquet as pq

from enrich_assets.app.cli import main
from enrich_assets.app.run_driver import dagster_instance, materialize_dataset
from enrich_assets.store.catalog import Catalog

EPISODES_META = "meta/episodes/chunk-000/file-000.parquet"
INDEXES = ["ai_near_duplicates", "ai_search_index", "ai_semantic_cluster"]
KEYS = ["episode_index", "camera", "frame_index"]
PROVENANCE = ["code_version", "run_id", "created_at"]


def _datasets_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return event.asset_materialization.metadata["datasets"].data["growing"]


def _derived(defs: dg.Definitions, instance: dg.DagsterInstance, rebuild: bool = False) -> dict:
    """One run of the derived assets; their per-dataset metadata."""
    config = {"ops": {a: {"config": {"rebuild": rebuild}} for a in INDEXES}}
    result = dg.materialize(
        list(defs.assets),
        instance=instance,
        resources=defs.resources,
        selection=INDEXES,
        run_config=config,
    )
    assert result.success
    return {a: _datasets_metadata(instance, a) for a in INDEXES}


def _table(catalog: Catalog, table: str) -> pl.DataFrame:
    return catalog.read(table, "growing").drop(PROVENANCE).sort(KEYS)


def _index_files(directory: Path) -> dict[str, int]:
    """File name -> inode: a file rewritten in place would keep its name, change its inode."""
    return {p.name: p.stat().st_ino for p in directory.iterdir()}


def _named(manifest: Path) -> set[str]:
    """The index files a manifest names."""
    saved = np.load(manifest)
    return {str(saved["base_file"]), str(saved["delta_file"])} - {""}


def test_new_episodes_are_searched_against_the_saved_index(
    settings, sample_root: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions

    root = Path(shutil.copytree(sample_root, tmp_path / "growing"))
    full = pq.read_table(root / EPISODES_META)
    pq.write_table(full.slice(0, 2), root / EPISODES_META)  # episodes 0-1 recorded so far
    defs = build_definitions()
    instance = dagster_instance(settings)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    first = materialize_dataset(defs, settings, root, "*ai_embedding")
    assert first.ok
    built = _derived(defs, instance)
    assert built["ai_near_duplicates"]["searched_rows"] == 20
    assert built["ai_near_duplicates"]["rebuilt"] == "no saved index"
    assert built["ai_search_index"]["added_rows"] == 20
    labels_before = _table(catalog, "ai_semantic_cluster")

    # episode 2 appears, a planted copy of 0: only its 10 keyframes are read and searched
    pq.write_table(full.slice(0, 3), root / EPISODES_META)
    assert materialize_dataset(defs, settings, root, "*ai_embedding", only=[2]).ok
    added = _derived(defs, instance)
    for asset, counter in [
        ("ai_near_duplicates", "searched_rows"),
        ("ai_search_index", "added_rows"),
    ]:
        assert added[asset][counter] == 10 and added[asset]["indexed_rows"] == 30
        assert added[asset]["rebuilt"] is None and added[asset]["removed_rows"] == 0
    assert added["ai_semantic_cluster"]["refit"] is None, added["ai_semantic_cluster"]
    assert added["ai_semantic_cluster"]["assigned_rows"] == 10
    labels = _table(catalog, "ai_semantic_cluster")
    assert labels.height == 30 and labels["ai_cluster_version"].n_unique() == 1
    old = labels.join(labels_before.select(KEYS), on=KEYS, how="semi")
    assert old.equals(labels_before)  # old keyframes keep their labels: nothing refitted
    copy = _table(catalog, "ai_near_duplicates").filter(pl.col("episode_index") == 2)
    assert copy["ai_is_duplicate_episode"].all() and (copy["ai_duplicate_of_episode"] == 0).all()

    # episodes 3-5 (one of them dark): searched alone; they drift from the clusters: a refit
    pq.write_table(full, root / EPISODES_META)
    assert materialize_dataset(defs, settings, root, "*ai_embedding", only=[3, 4, 5]).ok
    near_dup_dir = settings.data_dir / "near_duplicates" / "growing"
    index_dir = settings.data_dir / "index" / "growing"
    previous = _named(index_dir / "search.npz")
    added = _derived(defs, instance)
    assert added["ai_near_duplicates"]["searched_rows"] == added["ai_search_index"]["added_rows"]
    assert added["ai_search_index"]["added_rows"] == 30
    assert added["ai_search_index"]["indexed_rows"] == 60
    assert added["ai_semantic_cluster"]["refit"] == "drift"
    assert added["ai_semantic_cluster"]["assigned_rows"] == 60
    relabelled = _table(catalog, "ai_semantic_cluster")
    assert relabelled["ai_cluster_version"].unique().to_list() == [
        added["ai_semantic_cluster"]["version"]
    ]
    assert added["ai_semantic_cluster"]["version"] != labels["ai_cluster_version"][0]
    assert added["ai_semantic_cluster"]["previous_version"] == labels["ai_cluster_version"][0]

    # index files: the new set under new names beside the previous set, no temporary files
    named = _named(index_dir / "search.npz")
    assert named and not named & previous
    assert set(_index_files(index_dir)) == named | previous | {"search.npz", ".init.lock"}
    assert not [p for p in (*index_dir.iterdir(), *near_dup_dir.iterdir()) if ".tmp" in p.name]

    # nothing new: nothing read, searched or saved
    saved = _index_files(near_dup_dir), _index_files(index_dir)
    idle = _derived(defs, instance)
    assert idle["ai_near_duplicates"]["searched_rows"] == idle["ai_search_index"]["added_rows"] == 0
    assert not idle["ai_near_duplicates"]["saved"] and not idle["ai_search_index"]["saved"]
    assert idle["ai_semantic_cluster"]["assigned_rows"] == 0
    assert (_index_files(near_dup_dir), _index_files(index_dir)) == saved

    # a rebuild on demand searches everything and ends exactly where the increments did
    incremental = {t: _table(catalog, t) for t in INDEXES}
    rebuilt = _derived(defs, instance, rebuild=True)
    assert rebuilt["ai_near_duplicates"]["searched_rows"] == 60
    assert rebuilt["ai_near_duplicates"]["rebuilt"] == "requested"
    assert rebuilt["ai_semantic_cluster"]["refit"] == "requested"
    for table in ["ai_near_duplicates", "ai_search_index"]:
        assert _table(catalog, table).equals(incremental[table]), table

    # another embedding config (as after a model change) rebuilds by itself
    for episode in range(6):
        part = catalog.read_part("ai_embedding", "growing", f"{episode:06d}")
        catalog.write(
            "ai_embedding", "growing", f"{episode:06d}", part.with_columns(code_version=pl.lit("x"))
        )
    changed = _derived(defs, instance)
    assert changed["ai_near_duplicates"]["rebuilt"].startswith("config changed")
    assert changed["ai_search_index"]["added_rows"] == 60
    assert changed["ai_semantic_cluster"]["refit"] == "embedding config changed"

    assert main(["search", "a red cube", "--dataset", str(root), "--k", "3"]) == 0
    assert "3 hits in growing" in capsys.readouterr().out
