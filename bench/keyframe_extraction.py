"""Keyframe extraction (seek to the picks) against decoding every frame, on the real G1 episodes.

.venv/bin/python bench/keyframe_extraction.py [--repeats 5] [--data ../shared/data/real]

Per repeat, both sides process every episode of a dataset back to back (so load from other
jobs hits both alike); figures are per episode, median over repeats, wall and CPU time.
The baseline is `decode_all` over every video file: one per episode in v2.1, one holding all
episodes in v3.0 (the same frames either way, each decoded once).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.datasets.video import decode_all
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.infra.schema import pipeline_config

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds; CPU counts every decoder thread of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_dataset(root: Path, policy: KeyframePolicy, repeats: int) -> dict[str, float]:
    refs = open_lerobot(root, root.name).episodes()
    files = sorted({v.path for r in refs for v in r.frames.values()})
    frames = sum(r.length for r in refs)
    decoded = sum(1 for p in files for _ in decode_all(p))  # also warms the page cache
    if decoded != frames * len(refs[0].cameras):
        raise RuntimeError(f"{root}: decoded {decoded} frames, the parquet has {frames}")
    keyframes = [len(extract_keyframes(r, policy)) for r in refs]
    sides: dict[str, list[tuple[float, float]]] = {"keyframes": [], "decode_all": []}
    for _ in range(repeats):
        sides["keyframes"].append(timed(lambda: [extract_keyframes(r, policy) for r in refs]))
        sides["decode_all"].append(timed(lambda: [sum(1 for _ in decode_all(p)) for p in files]))
    per_episode = {
        f"{side}_{kind}": statistics.median(t[i] for t in times) / len(refs)
        for side, times in sides.items()
        for i, kind in enumerate(("wall", "cpu"))
    }
    return {"episodes": len(refs), "frames": frames, "keyframes": sum(keyframes), **per_episode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    policy = KeyframePolicy(**pipeline_config("keyframes"))
    print(f"policy: {policy}; per episode, median of {args.repeats} repeats")
    print(
        "| dataset | episodes | frames | keyframes | keyframes ms/ep (wall / CPU) "
        "| decode-all ms/ep (wall / CPU) | ratio wall | ratio CPU |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in ("g1_v30", "g1_v21"):
        r = bench_dataset(args.data / name, policy, args.repeats)
        print(
            f"| {name} | {r['episodes']} | {r['frames']} | {r['keyframes']} "
            f"| {1000 * r['keyframes_wall']:.1f} / {1000 * r['keyframes_cpu']:.1f} "
            f"| {1000 * r['decode_all_wall']:.1f} / {1000 * r['decode_all_cpu']:.1f} "
            f"| {r['decode_all_wall'] / r['keyframes_wall']:.1f}x "
            f"| {r['decode_all_cpu'] / r['keyframes_cpu']:.1f}x |"
        )


if __name__ == "__main__":
    main()
