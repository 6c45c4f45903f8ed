"""How long the sample dataset takes to write, against rendering alone (the baseline).

.venv/bin/python bench/sample_dataset.py [--episodes 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from enrich_assets.datasets.sample.generator import (
    CAMERAS,
    plan_dataset,
    render_episode,
    write_sample_dataset,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=96)
    args = parser.parse_args()

    start = time.perf_counter()
    plans, _ = plan_dataset(args.episodes, 0, (40, 70))
    for plan in plans:
        render_episode(plan, CAMERAS, args.width, args.height)
    render_s = time.perf_counter() - start
    frames = sum(plan.length for plan in plans)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        root = write_sample_dataset(
            Path(tmp) / "ds", args.episodes, width=args.width, height=args.height
        )
        write_s = time.perf_counter() - start
        size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20

    images = frames * len(CAMERAS)
    print(f"episodes={args.episodes} frames={frames} images={images} ({args.width}x{args.height})")
    print(f"render only (baseline): {render_s:.2f} s, {images / render_s:.0f} images/s")
    print(f"full write (+AV1, parquet, stats): {write_s:.2f} s, {images / write_s:.0f} images/s")
    print(f"write / render = {write_s / render_s:.2f}x; dataset on disk {size_mb:.1f} MB")


if __name__ == "__main__":
    main()
