"""Marginal Dagster cost per episode of a selection (default: the whole graph) and peak RSS.

PYTHONPATH=$PWD .venv/bin/python bench/graph_overhead.py [--sizes 48,200] [--select '*']
    [--instance sqlite|postgres] [--batch-size 64]

One sample dataset of tiny episodes (96x64, 20-24 frames) is written once; each size N
materializes its first N episodes with `materialize_dataset`, as the CLI does, in a child
process with a fresh data dir and Dagster instance (SQLite in the temp dir, or a fresh
database on a throwaway PostgreSQL server, deploy/dagster.postgres.yaml). The child reports
the wall time, the runs, and the assets' own compute (the `seconds` each asset reports per
run, see dagster_overhead.py); the parent reads the child's peak RSS (wait4).

overhead(N) = wall(N) - compute(N); marginal cost per episode = (overhead(N2) -
overhead(N1)) / (N2 - N1): what one more episode costs in Dagster and the driver, with the
fixed per-run and per-process costs taken out. The writeback group (it rewrites the dataset's
own files) is left out of '*'.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
WHOLE_GRAPH = "not group:writeback"


def child(root: Path, work: Path, episodes: int, select: str, batch_size: int) -> None:
    """Materialize episodes 0..N-1 of root; print one JSON line with the figures."""
    from dagster_overhead import measure

    m = measure(root, work, list(range(episodes)), batch_size, select)
    print(
        json.dumps(
            {"runs": m.runs, "wall_s": m.wall_s, "compute_s": m.compute_s, "failures": m.failures}
        )
    )


def run_child(args: argparse.Namespace, root: Path, work: Path, n: int, env: dict) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(n),
        "--root",
        str(root),
        "--work",
        str(work),
        "--select",
        args.select,
        "--batch-size",
        str(args.batch_size),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"size {n} failed (status {status}):\n{out[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kB on Linux
    result["episodes"] = n
    return result


def bytecode_cached(env: dict[str, str], root: Path) -> dict[str, str]:
    """Children compile each module once into a private cache and reuse it, as an installed
    package would: this environment sets PYTHONDONTWRITEBYTECODE and the shared venv holds no
    bytecode, which would add ~18 s of compiling torch/transformers to every process."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("PYTHONPYCACHEPREFIX", str(root / "pycache"))
    warm = "import enrich_assets.definitions, open_clip, torch, transformers"
    subprocess.run([sys.executable, "-c", warm], env=env, check=True)
    return env


def postgres_env(stack: ExitStack, database: str) -> dict[str, str]:
    """A throwaway PostgreSQL server (the tests' one) and DAGSTER_PG_* for a new database."""
    import sqlalchemy as sa

    from enrich_assets_tests.postgres_server import _create_database, postgres_server

    url = sa.engine.make_url(stack.enter_context(postgres_server()))
    _create_database(str(url).rsplit("/", 1)[0], database)
    return {
        "DAGSTER_PG_USERNAME": url.username or "",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_HOST": url.host or "",
        "DAGSTER_PG_PORT": str(url.port),
        "DAGSTER_PG_DB": database,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="48,200")
    parser.add_argument("--select", default=WHOLE_GRAPH)
    parser.add_argument("--instance", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--sample", help="sample dataset dir: reused if it exists, else written there"
    )
    parser.add_argument(
        "--dagster-event-log",
        action="store_true",
        help="SQLite: Dagster's own event log storage (the baseline), not the repo's batched one",
    )
    parser.add_argument("--child", type=int)
    parser.add_argument("--root")
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.child is not None:
        child(Path(args.root), Path(args.work), args.child, args.select, args.batch_size)
        return
    from enrich_assets.app.run_driver import EVENT_BATCH_SIZE
    from enrich_assets.datasets.sample.generator import write_sample_dataset

    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        tmp_path = Path(tmp)
        env = {**os.environ, "ENRICH_SETTINGS": str(tmp_path / "none.yaml")}
        env = bytecode_cached(env, Path(tempfile.gettempdir()) / "enrich-assets-bench")
        root = Path(args.sample) if args.sample else tmp_path / "sample"
        if not root.exists():
            start = time.perf_counter()
            write_sample_dataset(root, max(sizes), width=96, height=64, frames_per_episode=(20, 24))
            print(f"sample dataset: {max(sizes)} episodes in {time.perf_counter() - start:.1f} s")
        results = []
        for n in sizes:
            work = tmp_path / f"n{n}"
            home = work / "dagster_home"
            home.mkdir(parents=True)
            if args.instance == "postgres":
                env.update(postgres_env(stack, f"bench_{n}"))
                shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
            elif args.dagster_event_log:  # the run driver seeds only a home without one
                shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
            results.append(run_child(args, root, work, n, env))
            print(json.dumps(results[-1]), flush=True)
    print(
        f"\nselect {args.select!r}, instance {args.instance}"
        f"{' (Dagster event log)' if args.dagster_event_log else ''}, "
        f"batch size {args.batch_size}, "
        f"DAGSTER_EVENT_BATCH_SIZE={os.environ.get('DAGSTER_EVENT_BATCH_SIZE', EVENT_BATCH_SIZE)}"
    )
    print(
        "| episodes | runs | wall s | assets' compute s | overhead s | overhead ms/episode "
        "| peak RSS MB | failed or quarantined |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        over = r["wall_s"] - r["compute_s"]
        print(
            f"| {r['episodes']} | {r['runs']} | {r['wall_s']:.1f} | {r['compute_s']:.1f} "
            f"| {over:.1f} | {1000 * over / r['episodes']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r['failures']} |"
        )
    first, last = results[0], results[-1]
    marginal = ((last["wall_s"] - last["compute_s"]) - (first["wall_s"] - first["compute_s"])) / (
        last["episodes"] - first["episodes"]
    )
    print(
        f"marginal Dagster cost per episode, {first['episodes']} -> {last['episodes']}: "
        f"{1000 * marginal:.1f} ms"
    )


if __name__ == "__main__":
    main()
