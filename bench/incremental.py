"""Adding 1 % new episodes vs recomputing every derived feature from scratch.

    .venv/bin/python bench/incremental.py [--n 100000] [--new-fraction 0.01]

Full recompute, over all rows: near-duplicate index + search (from empty) + groups + episode
flags + save; cluster fit + labels; diversity of every episode; search index build + save.
Incremental, for the new episodes only: load the persisted near-duplicate and search indexes,
search/add the new rows, regroup, save; label the new rows with the fitted cluster model and
check drift; diversity of the new episodes plus the percentiles. The ratio is the claim
(target <= 5 %); agreement of the new rows' duplicate pairs with the full run is shown too.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic_embeddings import generate  # noqa: E402

from enrich_assets.enrich.clusters import (  # noqa: E402
    ClusterModel,
    assign_clusters,
    fit_clusters,
    needs_recluster,
)
from enrich_assets.enrich.diversity import episode_diversity, percentile  # noqa: E402
from enrich_assets.enrich.near_duplicates import (  # noqa: E402
    NearDuplicateIndex,
    episode_duplicates,
    keyframe_duplicates,
)
from enrich_assets.enrich.search_index import (  # noqa: E402
    extend_search_index,
    load_search_index,
    save_search_index,
)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Clock:
    """Wall and CPU seconds per named step."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str, fn):
        wall, cpu = time.perf_counter(), cpu_s()
        result = fn()
        self.wall[name] = time.perf_counter() - wall
        self.cpu[name] = cpu_s() - cpu
        return result


def near_duplicates(directory: Path, x, ids, episodes, order) -> NearDuplicateIndex:
    """Load (if saved) + add + group + flag + save: what one asset run does."""
    file = directory / "near_duplicates.npz"
    nd = NearDuplicateIndex.load(directory) if file.exists() else NearDuplicateIndex()
    nd.add(x, ids, episodes, order)
    keyframe_duplicates(nd)
    episode_duplicates(nd)
    nd.save(directory)
    return nd


def search_index(directory: Path, x, ids) -> None:
    index = load_search_index(directory) if (directory / "search.faiss").exists() else None
    save_search_index(extend_search_index(index, x, ids), directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--new-fraction", type=float, default=0.01)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    planted = generate(args.n, seed=3)
    x, episodes = planted.embeddings, planted.episode
    ids = np.arange(args.n)
    n_episodes = episodes.max() + 1
    first_new_episode = int(n_episodes * (1 - args.new_fraction))
    old = episodes < first_new_episode
    new = ~old
    print(f"rows {args.n}, episodes {n_episodes}, new episodes {n_episodes - first_new_episode}")

    full, inc = Clock(), Clock()
    with tempfile.TemporaryDirectory() as full_dir, tempfile.TemporaryDirectory() as inc_dir:
        full_dir, inc_dir = Path(full_dir), Path(inc_dir)
        nd_full = full("near_duplicates", lambda: near_duplicates(full_dir, x, ids, episodes, ids))
        full("clusters", lambda: assign_clusters(fit_clusters(x), x))
        full("diversity", lambda: percentile(episode_diversity(x, episodes)[1]))
        full("search_index", lambda: search_index(full_dir, x, ids))

        # State as the previous run left it: everything but the new episodes.
        near_duplicates(inc_dir, x[old], ids[old], episodes[old], ids[old])
        search_index(inc_dir, x[old], ids[old])
        saved_model = fit_clusters(x[old]).to_bytes()
        old_diversity = episode_diversity(x[old], episodes[old])[1]

        nd_inc = inc(
            "near_duplicates",
            lambda: near_duplicates(inc_dir, x[new], ids[new], episodes[new], ids[new]),
        )

        def clusters() -> bool:
            model = ClusterModel.from_bytes(saved_model)
            _, distance = assign_clusters(model, x[new])
            return needs_recluster(model, distance)

        recluster = inc("clusters", clusters)

        def diversity() -> np.ndarray:
            fresh = episode_diversity(x[new], episodes[new])[1]
            return percentile(np.concatenate([old_diversity, fresh]))

        inc("diversity", diversity)
        inc("search_index", lambda: search_index(inc_dir, x[new], ids[new]))

    def new_pairs(nd: NearDuplicateIndex) -> set[tuple[int, int]]:
        touch = np.isin(nd.pairs, ids[new]).any(axis=1)
        return set(map(tuple, nd.pairs[touch].tolist()))

    reference, found = new_pairs(nd_full), new_pairs(nd_inc)
    print(f"{'step':16s} {'full s':>8s} {'incr s':>8s} {'ratio':>7s}   (CPU s: full / incr)")
    for step in full.wall:
        ratio = inc.wall[step] / full.wall[step]
        print(
            f"{step:16s} {full.wall[step]:8.2f} {inc.wall[step]:8.2f} {ratio:7.2%}"
            f"   ({full.cpu[step]:.2f} / {inc.cpu[step]:.2f})"
        )
    total_full, total_inc = sum(full.wall.values()), sum(inc.wall.values())
    print(f"{'total':16s} {total_full:8.2f} {total_inc:8.2f} {total_inc / total_full:7.2%}")
    print(
        f"new rows' duplicate pairs: full run {len(reference)}, incremental {len(found)}, "
        f"shared {len(reference & found)}; drift -> recluster: {recluster}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB; load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
