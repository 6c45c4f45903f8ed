"""The vision assets with their models in Ray actors on a real two-node Ray cluster (processes
started by `ray start` on 127.0.0.1), through Dagster: same catalog rows as the local backend,
each model loaded once per actor however many chunks it is sent, actors freed after the step."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from enrich_assets.infra.settings import ComputeSettings, Settings, load_settings
from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.vision.ray_host import BATCHES_PER_CALL
from enrich_assets_tests.ray_cluster import ray_cluster

pytestmark = pytest.mark.timeout(900)

EPISODES = [0, 1]
SELECT = "*ai_embedding,ai_detections,ai_depth"
KEY = ["dataset_id", "episode_index", "camera", "frame_index"]


@pytest.fixture(scope="module")
def ray_address() -> str:
    with ray_cluster() as address:
        yield address


def run_vision(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, root: Path, compute: dict
) -> tuple[Settings, dict[str, pl.DataFrame]]:
    """Materialize the vision assets for EPISODES with `compute:` settings from a file."""
    from enrich_assets.app.run_driver import materialize_dataset
    from enrich_assets.definitions import build_definitions
    from enrich_assets.store.catalog import Catalog

    tmp.mkdir()
    (tmp / "enrich-assets.yaml").write_text(yaml.safe_dump({"compute": compute}))
    monkeypatch.setenv("ENRICH_SETTINGS", str(tmp / "enrich-assets.yaml"))
    monkeypatch.setenv("ENRICH_DATA_DIR", str(tmp / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp / "data" / "dagster_home"))
    settings = load_settings(tmp)
    assert settings.compute == ComputeSettings(**compute)
    report = materialize_dataset(build_definitions(), settings, root, SELECT, only=EPISODES)
    assert report.ok, report.failures
    assert not report.checks_failing, report.checks_failing[:3]
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    tables = ("keyframes", "ai_embedding", "ai_detections", "ai_depth")
    return settings, {t: catalog.read(t).sort(KEY) for t in tables}


def latest_metadata(settings: Settings, asset: str) -> dict:
    import dagster as dg

    from enrich_assets.app.run_driver import dagster_instance

    event = dagster_instance(settings).get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None and event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def assert_same_rows(local: dict[str, pl.DataFrame], remote: dict[str, pl.DataFrame]) -> None:
    same = ["ai_model_id", "ai_model_revision", "ai_preprocessing", "code_version"]
    for table in ("ai_embedding", "ai_detections", "ai_depth"):
        a, b = local[table], remote[table]
        assert a.height == b.height == local["keyframes"].height > 0
        assert a.select(KEY + same).equals(b.select(KEY + same)), table
    a, b = local["ai_embedding"], remote["ai_embedding"]
    va, vb = (np.array(t["ai_embedding"].to_list(), dtype=np.float32) for t in (a, b))
    np.testing.assert_allclose(va, vb, atol=1e-5)
    flags = ["tech_near_dup_of", "tech_is_near_duplicate"]
    assert a.select(flags).equals(b.select(flags))
    a, b = local["ai_detections"], remote["ai_detections"]
    for da, db in zip(a["ai_detections"], b["ai_detections"], strict=True):
        da, db = json.loads(da), json.loads(db)
        assert [d["label"] for d in da] == [d["label"] for d in db]
        for x, y in zip(da, db, strict=True):
            assert x["confidence"] == pytest.approx(y["confidence"], abs=1e-3)
            np.testing.assert_allclose(x["bbox"], y["bbox"], atol=0.05)
    a, b = local["ai_depth"], remote["ai_depth"]
    shape = ["ai_depth_height", "ai_depth_width", "ai_depth_kind"]
    assert a.select(shape).equals(b.select(shape))
    for column in ("ai_depth_min", "ai_depth_median", "ai_depth_max"):
        np.testing.assert_allclose(a[column].to_numpy(), b[column].to_numpy(), rtol=1e-2)


def wait_all_cpus_free(timeout_s: float = 30) -> dict:
    """The cluster's free resources once every actor has released its CPUs."""
    import ray

    deadline = time.monotonic() + timeout_s
    while (free := ray.available_resources()).get("CPU") != ray.cluster_resources()["CPU"]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return free


def test_ray_backend_matches_local(
    ray_address: str, sample_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    done, local = run_vision(tmp_path / "local", monkeypatch, sample_root, {"backend": "local"})
    assert latest_metadata(done, "ai_embedding")["compute"] == "local"
    compute = {"backend": "ray", "ray_address": ray_address, "actors_per_model": 2}
    settings, remote = run_vision(tmp_path / "ray", monkeypatch, sample_root, compute)
    assert_same_rows(local, remote)

    keyframes = local["keyframes"].height
    for asset, task in [("ai_embedding", "embedding"), ("ai_depth", "depth")]:
        meta = latest_metadata(settings, asset)
        chunk = BATCHES_PER_CALL * load_model_spec(task, "tiny").batch_size["cpu"]
        assert meta["compute"] == "ray"
        assert meta["ray_actors"] == 2 and meta["ray_nodes"] == 2  # one actor on each node
        assert meta["model_loads"] == 2  # once per actor ...
        assert meta["model_calls"] == math.ceil(keyframes / chunk) > 2  # ... for every chunk
    assert ray.is_initialized()  # the run connected this process to the cluster, as a driver
    free = wait_all_cpus_free()
    assert free.get("CPU") == 2.0, f"actors still hold CPUs after the run: {free}"


def test_a_model_no_node_can_hold_fails_in_time_and_frees_its_actors(ray_address: str) -> None:
    from enrich_assets.models.registry import ModelResources
    from enrich_assets.models.vision.ray_host import RayHost

    spec = dataclasses.replace(
        load_model_spec("embedding", "tiny"), resources=ModelResources(num_gpus=1)
    )
    compute = ComputeSettings(backend="ray", ray_address=ray_address, actor_start_timeout_s=5)
    asks = r"\{num_gpus: 1, num_cpus: 1, memory_gb: 2\}"
    with pytest.raises(TimeoutError, match=rf"model tiny-clip: 1 Ray actor\(s\) asking for {asks}"):
        RayHost(compute).open(spec)
    assert wait_all_cpus_free().get("CPU") == 2.0
