"""Dagster's own cost per episode in a batched backfill, against one run per episode.

.venv/bin/python bench/dagster_overhead.py [--episodes 200] [--baseline-episodes 16]

A small sample dataset (96x64, short episodes) is written to a temp dir and materialized
through a real, fresh Dagster instance with `materialize_dataset`, as the CLI does: the
foundation assets (`--select`) of every episode in batched range runs (default batch size),
then a few episodes with batch size 1 (one run per episode: the baseline). The assets' own
compute is the `seconds` each asset reports in its materialization metadata (once per asset
per run, read back from the event log; for a step of an asset without it, the step's
duration); overhead = wall time of `materialize_dataset` minus that compute. Temp dirs
follow TMPDIR (the Dagster instance's SQLite files live there).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType

from enrich_assets.datasets.sample.generator import write_sample_dataset

RUN_COUNT_EPISODES = (50, 100, 200)
FOUNDATION = "episode_manifest,keyframes,tech_quality"


@dataclass(frozen=True)
class Measured:
    episodes: int
    runs: int
    wall_s: float
    compute_s: float
    failures: int

    @property
    def overhead_ms_per_episode(self) -> float:
        return 1000 * (self.wall_s - self.compute_s) / self.episodes


def asset_compute_seconds(instance: dg.DagsterInstance) -> float:
    """The assets' own compute: the `seconds` each episode asset reports, counted once per
    (run, asset) as each run reports it (a range run records one materialization per
    partition, all carrying the same metadata); for a step without it (the derived and
    curation assets, one run over all episodes) the step's duration, start to end."""
    per_step: dict[tuple[str, str], float] = {}
    for key in instance.get_asset_keys():
        cursor = None
        while True:
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key), limit=1000, cursor=cursor
            )
            for record in page.records:
                materialization = record.asset_materialization
                seconds = materialization.metadata.get("seconds") if materialization else None
                if seconds is not None:
                    per_step[(record.run_id, key.to_user_string())] = float(seconds.value)
            if not page.has_more:
                break
            cursor = page.cursor
    if not per_step:
        raise RuntimeError("the event log holds no materialization with `seconds`")
    for run in instance.get_runs():
        for step, seconds in step_durations(instance, run.run_id).items():
            per_step.setdefault((run.run_id, step), seconds)
    return sum(per_step.values())


def step_durations(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Each step's start-to-end time in a run, from its events."""
    ends = {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    started: dict[str, float] = {}
    durations: dict[str, float] = {}
    for entry in instance.all_logs(run_id, of_type={DagsterEventType.STEP_START, *ends}):
        if entry.step_key is None or entry.dagster_event is None:
            continue
        if entry.dagster_event.event_type == DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
        elif entry.step_key in started:
            durations[entry.step_key] = entry.timestamp - started[entry.step_key]
    return durations


def measure(root: Path, work: Path, episodes: list[int], batch_size: int, select: str) -> Measured:
    """Materialize `episodes` of `root` in a fresh data dir and Dagster instance."""
    os.environ["ENRICH_DATA_DIR"] = str(work / "data")
    os.environ["DAGSTER_HOME"] = str(work / "dagster_home")
    from enrich_assets.app.run_driver import dagster_instance, materialize_dataset
    from enrich_assets.definitions import build_definitions
    from enrich_assets.infra.settings import load_settings

    settings = load_settings(work)
    defs = build_definitions()
    start = time.perf_counter()
    report = materialize_dataset(defs, settings, root, select, episodes, batch_size)
    wall = time.perf_counter() - start
    compute = asset_compute_seconds(dagster_instance(settings))
    return Measured(len(episodes), report.runs, wall, compute, len(report.failures))


def run_counts(keys: int, batch_size: int) -> int:
    """Range runs the runner starts for `keys` contiguous new episodes (before re-runs)."""
    from enrich_assets.app.run_driver import contiguous_batches

    order = [f"k{i:06d}" for i in range(keys)]
    return len(contiguous_batches(order, order, batch_size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--baseline-episodes", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--select", default=FOUNDATION, help="assets; '*' for all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["ENRICH_SETTINGS"] = str(tmp_path / "none.yaml")  # ignore any local file
        start = time.perf_counter()
        root = write_sample_dataset(
            tmp_path / "sample", args.episodes, width=96, height=64, frames_per_episode=(20, 24)
        )
        print(f"sample dataset: {args.episodes} episodes in {time.perf_counter() - start:.1f} s")
        results = {
            f"batched (batch size {args.batch_size})": measure(
                root, tmp_path / "batched", list(range(args.episodes)), args.batch_size, args.select
            ),
            "one run per episode (batch size 1)": measure(
                root, tmp_path / "single", list(range(args.baseline_episodes)), 1, args.select
            ),
        }
    print(
        "| mode | episodes | runs | wall s | assets' compute s | overhead ms/episode "
        "| failed or quarantined (episode, asset) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, m in results.items():
        print(
            f"| {name} | {m.episodes} | {m.runs} | {m.wall_s:.1f} | {m.compute_s:.1f} "
            f"| {m.overhead_ms_per_episode:.1f} | {m.failures} |"
        )
    batched, single = results.values()
    ratio = single.overhead_ms_per_episode / batched.overhead_ms_per_episode
    print(f"overhead per episode, one run each / batched: {ratio:.1f}x")
    print("| episodes | runs at batch size " + f"{args.batch_size} | runs at batch size 1 |")
    print("|---|---|---|")
    for n in RUN_COUNT_EPISODES:
        print(f"| {n} | {run_counts(n, args.batch_size)} | {run_counts(n, 1)} |")


if __name__ == "__main__":
    main()
