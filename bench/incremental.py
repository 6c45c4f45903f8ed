"""Adding 1 % new episodes vs recomputing, through the derived Dagster assets as wired.

    .venv/bin/python bench/incremental.py [--n 100000] [--new-fraction 0.01]

Synthetic keyframe embeddings (bench/synthetic_embeddings.py) are written as the
ai_embedding catalog parts of a registered dataset, one part per episode, as the vision
assets write them. Full: each derived asset run with `rebuild: true` over every keyframe
(from empty: read all, index, search, cluster, write). Incremental: the state a previous run
left for all but the new episodes, then a normal materialization after their parts appear.
Idle: one more run with nothing new. Per asset: Dagster's step time (load, compute, save,
catalog write; not the run's start-up) and the CPU seconds of the whole in-process run.
ai_episode_diversity is left out: it reads every episode's trajectories from the dataset
(the synthetic keys have none) and is recomputed in full on every run.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic_embeddings import generate  # noqa: E402

from enrich_assets.defs.derived import (  # noqa: E402
    ai_near_duplicates,
    ai_search_index,
    ai_semantic_cluster,
)
from enrich_assets.defs.resources import PipelineResource  # noqa: E402
from enrich_assets.infra.settings import Settings  # noqa: E402
from enrich_assets.store.catalog import Catalog  # noqa: E402
from enrich_assets.store.registry import DatasetRegistry  # noqa: E402

ASSETS = [ai_near_duplicates, ai_semantic_cluster, ai_search_index]
COUNTERS = {
    "ai_near_duplicates": "searched_rows",
    "ai_semantic_cluster": "assigned_rows",
    "ai_search_index": "added_rows",
}


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_episodes(catalog: Catalog, x: np.ndarray, episodes: np.ndarray, which: list[int]) -> None:
    """ai_embedding parts as the vision asset leaves them (the columns derived assets read)."""
    d = x.shape[1]
    for e in which:
        rows = np.flatnonzero(episodes == e)
        offsets = pa.array(np.arange(len(rows) + 1, dtype=np.int32) * d)
        vectors = pa.ListArray.from_arrays(offsets, pa.array(x[rows].ravel(), pa.float32()))
        table = pa.table(
            {
                "episode_index": pa.array(np.full(len(rows), e, np.int64)),
                "camera": pa.array(["observation.images.top"] * len(rows)),
                "frame_index": pa.array(rows - rows[0]),
                "ai_embedding": vectors,
                "code_version": pa.array(["bench"] * len(rows)),
            }
        )
        catalog.write("ai_embedding", "bench", f"{e:06d}", table)


def run(data_dir: Path, rebuild: bool = False) -> dict[str, tuple[float, float, int]]:
    """Each derived asset in its own run: (step seconds, run CPU seconds, rows it read)."""
    resources = {"pipeline": PipelineResource(data_dir=str(data_dir))}
    out = {}
    with dg.instance_for_test() as instance:
        for asset in ASSETS:
            name = asset.key.to_user_string()
            cpu = cpu_s()
            result = dg.materialize(
                [asset],
                instance=instance,
                resources=resources,
                run_config={"ops": {name: {"config": {"rebuild": rebuild}}}},
            )
            cpu = cpu_s() - cpu
            (step,) = result.get_step_success_events()
            metadata = result.asset_materializations_for_node(name)[0].metadata
            rows = metadata["datasets"].data["bench"][COUNTERS[name]]
            out[name] = (step.event_specific_data.duration_ms / 1000, cpu, rows)
    return out


def near_duplicate_rows(data_dir: Path) -> pl.DataFrame:
    settings = Settings(data_dir)
    rows = Catalog(settings.catalog_dir, settings.duckdb_path).read("ai_near_duplicates")
    return rows.drop("run_id", "created_at").sort("episode_index", "frame_index")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--new-fraction", type=float, default=0.01)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    planted = generate(args.n, seed=3)
    x, episodes = planted.embeddings, planted.episode
    n_episodes = int(episodes.max()) + 1
    first_new = int(n_episodes * (1 - args.new_fraction))
    old, new = list(range(first_new)), list(range(first_new, n_episodes))
    new_rows = int(np.isin(episodes, new).sum())
    print(f"rows {args.n}, episodes {n_episodes}, new episodes {len(new)} ({new_rows} rows)")

    with tempfile.TemporaryDirectory() as tmp:
        root, inc_dir, full_dir = (Path(tmp) / name for name in ("bench", "inc", "full"))
        root.mkdir()
        for data_dir in (inc_dir, full_dir):
            DatasetRegistry(Settings(data_dir).registry_path).register(root)
        catalog = Catalog(Settings(inc_dir).catalog_dir, Settings(inc_dir).duckdb_path)
        started = time.perf_counter()
        write_episodes(catalog, x, episodes, old)
        run(inc_dir)  # the state the previous materialization left
        write_episodes(catalog, x, episodes, new)
        (full_dir / "catalog").mkdir(parents=True)  # the same embeddings, nothing else
        (full_dir / "catalog" / "ai_embedding").symlink_to(inc_dir / "catalog" / "ai_embedding")
        print(f"setup (catalog parts + previous state): {time.perf_counter() - started:.0f} s")
        full = run(full_dir, rebuild=True)
        inc = run(inc_dir)
        idle = run(inc_dir)
        by_full, by_inc = near_duplicate_rows(full_dir), near_duplicate_rows(inc_dir)

    print(
        f"{'asset':22s} {'full s':>8s} {'incr s':>8s} {'ratio':>7s} {'idle s':>7s}"
        "   CPU s: full / incr / idle   rows read: full / incr / idle"
    )
    totals = np.zeros(6)
    for name, (f_s, f_cpu, f_rows) in full.items():
        i_s, i_cpu, i_rows = inc[name]
        z_s, z_cpu, z_rows = idle[name]
        totals += (f_s, i_s, z_s, f_cpu, i_cpu, z_cpu)
        print(
            f"{name:22s} {f_s:8.2f} {i_s:8.2f} {i_s / f_s:7.2%} {z_s:7.2f}"
            f"   {f_cpu:6.2f} / {i_cpu:5.2f} / {z_cpu:5.2f}"
            f"   {f_rows} / {i_rows} / {z_rows}"
        )
    f_s, i_s, z_s, f_cpu, i_cpu, z_cpu = totals
    print(
        f"{'total':22s} {f_s:8.2f} {i_s:8.2f} {i_s / f_s:7.2%} {z_s:7.2f}"
        f"   {f_cpu:6.2f} / {i_cpu:5.2f} / {z_cpu:5.2f}   (CPU ratio {i_cpu / f_cpu:.2%})"
    )
    columns = ["episode_index", "camera", "frame_index", "ai_dup_of_episode", "ai_dup_of_frame"]
    agree = by_full.join(by_inc, on=columns, how="semi", nulls_equal=True).height
    flagged = [
        sorted(set(f.filter("ai_is_duplicate_episode")["episode_index"])) for f in (by_full, by_inc)
    ]
    print(
        f"ai_near_duplicates, increment vs full recompute: {agree} of {by_full.height} keyframes"
        f" with the same dup_of; same duplicate episodes: {flagged[0] == flagged[1]}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
