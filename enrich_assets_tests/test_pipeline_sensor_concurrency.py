"""The new-episodes sensor on a growing dataset, and concurrent materializations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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
    root = Path(shutil.copytree(sample_root, tmp_path / "growing"))
    full = tmp_path / "full_episodes.parquet"
    shutil.copy(root / EPISODES_META, full)
    _truncate_to(root, full, 3)
    tick, instance = _ticker(settings, [root])

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


def _ticker(settings, roots: list[Path]):  # noqa: ANN001, ANN202
    """A function running one sensor tick (applying its partition requests) on `roots`."""
    from enrich_assets.definitions import build_definitions
    from enrich_assets.defs.sensors import new_episodes

    os.environ["ENRICH_DATASET_ROOTS"] = os.pathsep.join(map(str, roots))
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

    return tick, instance


def _break_episode_index(root: Path) -> None:
    """A null episode_index in meta/episodes: not a DatasetError the reader names."""
    table = pq.read_table(root / EPISODES_META)
    values = table.column("episode_index").to_pylist()
    values[1] = None
    column = pa.array(values, table.schema.field("episode_index").type)
    pq.write_table(table.set_column(0, "episode_index", column), root / EPISODES_META)


@pytest.mark.parametrize("damage", ["null_episode_index", "missing_column", "bad_info"])
def test_a_broken_root_is_skipped_and_the_others_still_registered(
    settings, sample_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture, damage: str
) -> None:  # noqa: ANN001
    good = Path(shutil.copytree(sample_root, tmp_path / "good"))
    broken = Path(shutil.copytree(sample_root, tmp_path / "broken"))
    if damage == "null_episode_index":
        _break_episode_index(broken)
    elif damage == "missing_column":
        table = pq.read_table(broken / EPISODES_META)
        pq.write_table(table.drop_columns(["dataset_to_index"]), broken / EPISODES_META)
    else:
        (broken / "meta/info.json").write_text("{not json")
    tick, instance = _ticker(settings, [broken, good])
    capfd.readouterr()
    first = tick(None)
    logged = capfd.readouterr().err.splitlines()  # dagster's console log of the tick
    assert instance.get_dynamic_partitions(episodes.name) == [f"good:ep{i:06d}" for i in range(6)]
    assert [r.tags["dagster/asset_partition_range_start"] for r in first.run_requests] == [
        "good:ep000000"
    ]
    about = [m for m in logged if f"dataset root {broken} skipped" in m]
    assert len(about) == 1 and " - WARNING - " in about[0], logged
    assert not any("Traceback" in m for m in logged)
    if damage == "missing_column":
        assert "lacks the column 'dataset_to_index'" in about[0]
    # the broken root is retried: once repaired, its episodes come in
    shutil.rmtree(broken)
    shutil.copytree(sample_root, broken)
    second = tick(first.cursor)
    assert [r.tags["dagster/asset_partition_range_start"] for r in second.run_requests] == [
        "broken:ep000000"
    ]


def test_a_re_recorded_episode_is_requested_again(
    settings, sample_root: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    root = Path(shutil.copytree(sample_root, tmp_path / "rec"))
    tick, instance = _ticker(settings, [root])
    first = tick(None)
    assert len(instance.get_dynamic_partitions(episodes.name)) == 6
    assert tick(first.cursor).run_requests == []
    # episode 2 re-recorded under the same index: same length, new frames (new stats)
    table = pq.read_table(root / EPISODES_META)
    stat = next(c for c in table.column_names if c.startswith("stats/") and c.endswith("/mean"))
    values = table.column(stat).to_pylist()
    values[2] = [v + 1.0 for v in values[2]]
    column = pa.array(values, table.schema.field(stat).type)
    pq.write_table(
        table.set_column(table.schema.get_field_index(stat), stat, column), root / EPISODES_META
    )
    again = tick(first.cursor)
    assert again.dynamic_partitions_requests == []
    assert [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in again.run_requests
    ] == [("rec:ep000002", "rec:ep000002")]
    assert len(again.cursor) < 200  # signatures live beside the data, not in the cursor
    assert tick(again.cursor).run_requests == []


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_concurrent_materializations_lose_nothing(
    settings, sample_root: Path, request: pytest.FixtureRequest, storage: str
) -> None:  # noqa: ANN001
    """Two CLI processes at once on overlapping episodes, on the one-machine instance
    (SQLite) and on the production one (deploy/dagster.postgres.yaml: DAGSTER_PG_* env)."""
    if storage == "postgres":
        request.getfixturevalue("postgres_home")
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
    if storage == "postgres":  # the CLI used the production instance, not a SQLite one
        from dagster_postgres import PostgresRunStorage

        with dagster_instance(settings) as instance:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert len(instance.get_runs()) >= 2
        assert not list(settings.dagster_home.rglob("*.db"))
