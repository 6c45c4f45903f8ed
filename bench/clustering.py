"""Semantic clustering of 100k synthetic 768-d keyframe embeddings, against direct HDBSCAN.

    .venv/bin/python bench/clustering.py [--n 100000] [--subset 5000]

Planted: 40 gaussian scenes of varying size and spread (variable density). Ours: `fit_clusters`
+ `assign_clusters` on all rows, MiniBatchKMeans (default k) and HDBSCAN-on-a-sample.
Baseline, same run: hdbscan.HDBSCAN directly on the raw 768-d embeddings of random subsets
(its time is also extrapolated to n as n^2, as an estimate); ARI of both on the subset.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic_embeddings import generate  # noqa: E402

from enrich_assets.enrich.derived.clusters import (  # noqa: E402
    NOISE,
    ClusterConfig,
    assign_clusters,
    check_cluster_balance,
    fit_clusters,
)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_s()
    result = fn()
    return result, time.perf_counter() - wall, cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=5000)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    planted = generate(args.n, n_clusters=40, dup_fraction=0.0, seed=2)
    x, truth = planted.embeddings, planted.cluster
    print(f"n={args.n}, planted non-empty clusters: {len(np.unique(truth))}")
    subset = np.sort(np.random.default_rng(0).choice(args.n, args.subset, replace=False))

    import hdbscan

    def direct(rows: np.ndarray) -> np.ndarray:
        size = max(10, len(rows) // 800)  # the same rule fit_clusters uses
        return hdbscan.HDBSCAN(min_cluster_size=size, min_samples=5).fit_predict(x[rows])

    base_labels, base_s, base_cpu = timed(lambda: direct(subset))
    base_full_cpu = base_cpu * (args.n / len(subset)) ** 2
    base_ari = adjusted_rand_score(truth[subset], base_labels)
    print(
        f"baseline hdbscan direct on {len(subset)} rows x 768: {base_s:.1f} s wall "
        f"({base_cpu:.1f} s CPU), ARI {base_ari:.4f}, noise {np.mean(base_labels == NOISE):.1%}, "
        f"clusters {base_labels.max() + 1}; as n^2: ~{base_full_cpu / 60:.0f} CPU-min at {args.n}"
    )

    for config in (ClusterConfig(), ClusterConfig(method="hdbscan")):

        def fit_and_label(config: ClusterConfig = config) -> np.ndarray:
            return assign_clusters(fit_clusters(x, config), x)[0]

        labels, wall, cpu = timed(fit_and_label)
        ari_all = adjusted_rand_score(truth, labels)
        ari_subset = adjusted_rand_score(truth[subset], labels[subset])
        balance = check_cluster_balance(labels)
        print(
            f"ours {config.method:7s} on all {args.n} rows: {wall:.1f} s wall ({cpu:.1f} s CPU), "
            f"clusters {labels.max() + 1}, noise {np.mean(labels == NOISE):.1%}, "
            f"ARI all {ari_all:.4f}, ARI on subset {ari_subset:.4f} (baseline {base_ari:.4f}); "
            f"time ratio vs direct hdbscan on the {len(subset)}-row subset: {wall / base_s:.2f} "
            f"wall, {cpu / base_cpu:.2f} CPU (ours on {args.n / len(subset):.0f}x the rows); "
            f"vs its n^2 extrapolation {cpu / base_full_cpu:.4f} CPU; "
            f"balance check passed: {balance.passed}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
