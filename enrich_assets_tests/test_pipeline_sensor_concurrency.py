"""The new-episodes sensor on a growing dataset, and concurrent materializations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from enrich_assets.app.run_driver import dagster_instance
from enrich_assets.defs.partitions import episodes
from enrich_assets.store.catalog import Catalog

EPISODES_META = "meta/episodes/chunk-000/file-000.parquet"


def _truncate_to(root: Path, full_meta: Path, n: int) -> None:
    """Make the dataset look as if only its first n episodes were recorded so far."""
    pq.write_table(pq.read_table(full_meta).slice(0, n), root / EPISODES_META)


def test_sensor_adds_new_episodes_in_batched_runs(
    settings, sample_root: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions
    from enrich_assets.defs.sensors import new_episodes

    root = Path(shutil.copytree(sample_root, tmp_path / "growing"))
    full = tmp_path / "full_episodes.parquet"
    shutil.copy(root / EPISODES_META, full)
    _truncate_to(root, full, 3)
    os.environ["ENRICH_DATASET_ROOTS"] = str(root)
    try:
        defs = build_definitions()
    finally:
        del os.environ["ENRICH_DATASET_ROOTS"]
    instance = dagster_instance(settings)

    def tick(cursor: str | None) -> dg.SensorResult:
        ctx = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
        )
        result = new_episodes(ctx)
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(episodes.name, list(request.partition_keys))
        return result

    first = tick(None)
    assert instance.get_dynamic_partitions(episodes.name) == [
        f"growing:ep{i:06d}" for i in range(3)
    ]
    assert len(first.run_requests) == 1
    assert first.run_requests[0].tags["dagster/asset_partition_range_start"] == "growing:ep000000"
    assert first.run_requests[0].tags["dagster/asset_partition_range_end"] == "growing:ep000002"

    unchanged = tick(first.cursor)
    assert unchanged.run_requests == [] and unchanged.dynamic_partitions_requests == []

    shutil.copy(full, root / EPISODES_META)  # three more episodes appended
    grown = tick(unchanged.cursor)
    assert len(instance.get_dynamic_partitions(episodes.name)) == 6
    assert [r.tags["dagster/asset_partition_range_start"] for r in grown.run_requests] == [
        "growing:ep000003"
    ]
    assert grown.run_requests[0].tags["dagster/asset_partition_range_end"] == "growing:ep000005"

    _truncate_to(root, full, 5)  # an episode vanished: reported, never dropped
    shrunk = tick(grown.cursor)
    assert shrunk.run_requests == [] and len(instance.get_dynamic_partitions(episodes.name)) == 6


def test_concurrent_materializations_lose_nothing(settings, sample_root: Path) -> None:  # noqa: ANN001
    env = {
        **os.environ,
        "ENRICH_DATA_DIR": str(settings.data_dir),
        "DAGSTER_HOME": str(settings.dagster_home),
    }
    # the foundation assets: what concurrency can break is the catalog and the instance
    cli = [
        sys.executable,
        "-m",
        "enrich_assets.app.cli",
        "materialize",
        "--dataset",
        str(sample_root),
        "--select",
        "*tech_quality",
    ]
    runs = [
        subprocess.Popen(
            [*cli, "--episodes", "0,1,2,3"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        subprocess.Popen(
            [*cli, "--episodes", "2,3,4,5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
    ]
    outputs = [p.communicate(timeout=600)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    keyframes = catalog.read("keyframes")
    assert keyframes.height == 6 * 2 * 5
    assert keyframes.unique(["episode_index", "camera", "frame_index"]).height == keyframes.height
    assert catalog.read("tech_quality").height == 6 * 2 * 5
