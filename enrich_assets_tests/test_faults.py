"""Fault injection through the CLI, as a user meets failures: killed processes, damaged
videos, a full disk. Each test runs the real command in a subprocess against a real Dagster
instance; what it checks is what the user would read (exit code, console, status, catalog).

The VLM-side faults (empty choices, HTML, a 401 echoing the key) are in test_vlm_truth.py,
malformed and unknown settings in test_settings.py, a past-the-end row range in
test_core_readers.py and ../shared/acceptance/truth.sh.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

CLI = [sys.executable, "-m", "enrich_assets.app.cli"]


def _env(tmp_path: Path, data: Path | None = None) -> dict[str, str]:
    data = data or tmp_path / "data"
    env = {**os.environ, "ENRICH_DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dh")}
    env.pop("ENRICH_SETTINGS", None)
    return env


def _cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600):  # noqa: ANN202
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from enrich_assets.datasets.lerobot.v3_writer import FileLimits
    from enrich_assets.datasets.sample.generator import write_sample_dataset

    return write_sample_dataset(  # one video file per episode: damage hits one episode
        tmp_path_factory.mktemp("faults") / "ds",
        episodes=4,
        seed=3,
        width=96,
        height=64,
        frames_per_episode=(24, 32),
        limits=FileLimits(episodes_per_file=1),
    )


def _instance(env: dict[str, str]) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])


def _create_instance(home: str) -> None:
    from enrich_assets.infra.paths import DAGSTER_YAML

    Path(home).mkdir(parents=True)
    shutil.copy(DAGSTER_YAML, Path(home) / "dagster.yaml")
    with dg.DagsterInstance.from_config(home):
        pass


def _wait_for_vlm_step(instance_home: str, deadline: float, seen: set[str]) -> bool:
    """True once a run not in `seen` has started its language_plan step (a VLM call is in
    flight); that run is added to `seen`."""
    while time.time() < deadline:
        with dg.DagsterInstance.from_config(instance_home) as instance:
            started = instance.get_runs(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
            )
            for run in (r for r in started if r.run_id not in seen):
                steps = instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.STEP_START
                ).records
                if any(r.event_log_entry.step_key == "language_plan" for r in steps):
                    seen.add(run.run_id)
                    return True
        time.sleep(1.0)
    return False


def test_five_kills_in_vlm_steps_then_a_run_completes(tmp_path: Path, small_dataset: Path) -> None:
    """Each kill used to keep one of the 4 `vlm_api` slots and leave a STARTED run: after
    four, every language run hung. The CLI now reaps dead runs and frees their slots."""
    env = _env(tmp_path)
    _create_instance(env["DAGSTER_HOME"])  # before any reader polls it: no schema race
    slow = tmp_path / "slow.yaml"
    slow.write_text("vlm:\n  latency_s: 60\n")
    args = ["materialize", "--dataset", str(small_dataset), "--episodes", "0"]
    args += ["--select", "key:language_plan"]
    killed: set[str] = set()
    for _ in range(5):
        proc = subprocess.Popen(
            [*CLI, *args],
            env={**env, "ENRICH_SETTINGS": str(slow)},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert _wait_for_vlm_step(env["DAGSTER_HOME"], time.time() + 240, killed)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    started = time.time()
    done = _cli(args, env, tmp_path, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "language_plan            ok=1" in done.stdout
    assert time.time() - started < 400
    with _instance(env) as instance:
        live = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert live == []  # the five killed runs are failed, not STARTED forever
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        every = [(r.run_id[:8], r.status.value) for r in instance.get_runs()]
        assert len(failed) == 5, every
    status = _cli(["status", "--dataset", str(small_dataset)], env, tmp_path)
    assert status.stdout.count("its process died") == 5


@pytest.mark.parametrize("damage", ["truncated", "zeroed"])
def test_a_damaged_video_fails_its_episode_alone(
    tmp_path: Path, small_dataset: Path, damage: str
) -> None:
    root = Path(shutil.copytree(small_dataset, tmp_path / "ds"))
    video = sorted((root / "videos").rglob("*.mp4"))[0]
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 3] if damage == "truncated" else bytes(len(data)))
    env = _env(tmp_path)
    select = ["--select", "key:episode_manifest or key:keyframes or key:tech_quality"]
    result = _cli(["materialize", "--dataset", str(root), *select], env, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.strip().startswith("FAILED")]
    assert failed and all(video.name in line or "episode" in line for line in failed)
    log = Path(result.stdout.split("log: ")[1].split()[0])
    assert log.is_file()
    with _instance(env) as instance:
        from enrich_assets.defs.partitions import episodes

        keys = instance.get_dynamic_partitions(episodes.name)
        status = instance.get_status_by_partition(dg.AssetKey("tech_quality"), keys, episodes)
    materialized = [k for k in keys if status.get(k) == dg.AssetPartitionStatus.MATERIALIZED]
    assert 0 < len(materialized) < len(keys)  # the others went on; the damaged one did not


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_one_line_and_the_catalog_stays_intact(
    tmp_path: Path, small_dataset: Path
) -> None:
    data = tmp_path / "small"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(data)], check=True)
    try:
        env = _env(tmp_path, data)
        select = ["--select", "key:episode_manifest or key:keyframes"]
        result = _cli(["materialize", "--dataset", str(small_dataset), *select], env, tmp_path)
        assert result.returncode != 0
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "no space left on device" in error[0]
        assert str(data) in error[0]
        import pyarrow.parquet as pq

        for part in data.rglob("*.parquet"):  # whatever was written is whole
            pq.read_table(part)
        assert not list(data.rglob(".tmp-*"))
    finally:
        subprocess.run(["umount", str(data)], check=False)
