"""Near-duplicate flags on synthetic 768-d keyframe embeddings, against exact search.

    .venv/bin/python bench/near_duplicates.py [--sizes 10000 100000 1000000] [--sample 2000]

For each size (in its own process, so peak RSS is per size): generate clustered embeddings
with planted near-duplicates into a .npy memmap, build the near-duplicate index from empty
(the full recompute), group keyframes and flag episodes. Baseline, same run: exact brute
force (BLAS, as faiss's flat index) for `sample` random query rows; recall is measured on
them, and the exact full self-join time is extrapolated from them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic_embeddings import generate  # noqa: E402

from enrich_assets.enrich.derived.near_duplicates import (  # noqa: E402
    DEFAULT_THRESHOLD,
    NearDuplicateIndex,
    episode_duplicates,
    keyframe_duplicates,
)
from enrich_assets.store.vector_index import chunks  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def exact_pairs(x: np.ndarray, queries: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """(min, max) row pairs above threshold that involve a query row: brute force."""
    q = np.ascontiguousarray(x[queries])
    pairs = set()
    for part in chunks(len(x)):
        r, c = np.nonzero(q @ x[part].T > threshold)
        rows, hits = queries[r], c + part.start
        keep = rows != hits
        pairs |= set(
            zip(
                np.minimum(rows, hits)[keep].tolist(),
                np.maximum(rows, hits)[keep].tolist(),
                strict=True,
            )
        )
    return pairs


def run_one(n: int, sample: int, workdir: Path) -> dict:
    t = time.perf_counter()
    planted = generate(n, out=workdir / f"emb_{n}.npy")
    generate_s = time.perf_counter() - t
    x, rows = planted.embeddings, np.arange(n)

    t, cpu = time.perf_counter(), cpu_s()
    nd = NearDuplicateIndex()
    nd.add(x, rows, planted.episode, rows)
    index_s = time.perf_counter() - t
    t = time.perf_counter()
    kf = keyframe_duplicates(nd)
    ep = episode_duplicates(nd)
    group_s = time.perf_counter() - t
    ours_cpu_s = cpu_s() - cpu

    rng = np.random.default_rng(1)
    queries = np.sort(rng.choice(n, min(sample, n), replace=False))
    t = time.perf_counter()
    exact = exact_pairs(x, queries, DEFAULT_THRESHOLD)
    exact_sample_s = time.perf_counter() - t
    touch = np.isin(nd.pairs, queries).any(axis=1)
    found = set(map(tuple, nd.pairs[touch].tolist()))

    src, dup = planted.dup_pairs.T
    planted_sims = np.einsum("ij,ij->i", x[src], x[dup])
    above = planted.dup_pairs[planted_sims > DEFAULT_THRESHOLD]
    pair_key = nd.pairs[:, 0] * n + nd.pairs[:, 1]
    planted_found = np.isin(above.min(axis=1) * n + above.max(axis=1), pair_key).mean()

    exact_full_s = exact_sample_s * n / len(queries)
    total_s = index_s + group_s
    return {
        "n": n,
        "index_type": type(nd.index).__name__,
        "generate_s": round(generate_s, 1),
        "index_and_search_s": round(index_s, 1),
        "group_s": round(group_s, 2),
        "total_s": round(total_s, 1),
        "total_cpu_s": round(ours_cpu_s, 1),
        "exact_sample_queries": len(queries),
        "exact_sample_s": round(exact_sample_s, 1),
        "exact_full_extrapolated_s": round(exact_full_s, 1),
        "speedup_vs_exact": round(exact_full_s / total_s, 1),
        "recall_vs_exact_sample": round(len(found & exact) / max(len(exact), 1), 4),
        "exact_pairs_in_sample": len(exact),
        "false_pairs_in_sample": len(found - exact),
        "planted_pairs_recall": round(float(planted_found), 4),
        "pairs": len(nd.pairs),
        "keyframes_with_dup_of": int((kf.dup_of >= 0).sum()),
        "episodes_flagged": int((ep.dup_of >= 0).sum()),
        "peak_rss_mb": round(peak_rss_mb()),
        "load_avg_1m_at_end": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_one(args.one, args.sample, Path(tmp))), flush=True)
        return
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}", flush=True)
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--sample", str(args.sample)]
        result = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
