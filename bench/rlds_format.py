"""RLDS (TFDS builder directory, read without TensorFlow): keyframe extraction against reading
every frame, and what listing costs (every record parsed once to count its steps).

PYTHONPATH=$PWD .venv/bin/python bench/rlds_format.py [--episodes 6] [--frames 300] [--repeats 3]

The builder is written to a temp dir from the real G1 fixture (frames decoded with PyAV at
640x480, repeated to `--frames` per episode, one JPEG per step, 2 episodes per shard) in the
layout the real TFDS writes (`enrich_assets_tests/rlds_fixtures.py`). Per repeat both sides
process every episode back to back; figures are per episode, median over repeats. The
baseline reads every frame of every camera through the same FrameSource (`iter_at` over all
positions), i.e. what a TFDS pipeline that decodes every step's image pays at least.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.hdf5_formats import episodes, read_every_frame, timed
from enrich_assets.datasets.rlds import reader as rlds
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.infra.schema import pipeline_config
from enrich_assets_tests import rlds_fixtures as rf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy = KeyframePolicy(**pipeline_config("keyframes"))
    with tempfile.TemporaryDirectory() as tmp:
        root = rf.write_builder(Path(tmp), "bench", episodes(args.episodes, args.frames))
        size = sum(p.stat().st_size for p in root.iterdir()) / 1e6

        def listing() -> None:
            rlds._scan.cache_clear()  # noqa: SLF001 - time the first listing of a process
            rlds.RLDSReader(root, "bench").episodes()

        reader = rlds.RLDSReader(root, "bench")
        refs = reader.episodes()
        read_every_frame(reader)  # warm the page cache for both sides
        keyframes = sum(len(extract_keyframes(r, policy)) for r in refs)
        n = len(refs)
        runs = range(args.repeats)
        list_ms = 1000 * statistics.median(timed(listing) for _ in runs) / n
        picks = 1000 * statistics.median(
            timed(lambda: [extract_keyframes(r, policy) for r in refs]) for _ in runs
        )
        every = 1000 * statistics.median(timed(lambda: read_every_frame(reader)) for _ in runs)
        print(
            f"policy: {policy}; {n} episodes x {args.frames} steps 480x640 JPEG "
            f"({size:.0f} MB of shards), median of {args.repeats}"
        )
        print("| step | ms/episode |")
        print("|---|---|")
        print(f"| listing (parse every record once, no decoding) | {list_ms:.1f} |")
        print(f"| keyframes ({keyframes // n} per episode) | {picks / n:.1f} |")
        print(f"| every frame decoded | {every / n:.1f} |")
        print(f"ratio every frame / keyframes: {every / picks:.1f}x")


if __name__ == "__main__":
    main()
