"""Quality scoring throughput: ours (`score_image`) against cleanvision's issue checks.

.venv/bin/python bench/quality_scoring.py [--per-episode 25] [--repeats 3]
(needs the bench extra: `uv pip install cleanvision`)

Keyframes of the real G1 episodes (640x480) are decoded once and saved as PNG files in a
temp folder. Both sides read the same files and score every image: ours loads each PNG and
runs `score_image` (sharpness, brightness, completeness); cleanvision runs the checks that
compare (blurry, dark, light, low_information) on the folder. cleanvision is timed with one
worker (like ours) and with its default, one worker per core. Median of repeats, images/s.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.enrich.episode.quality import QualityConfig, score_image
from enrich_assets.infra.schema import pipeline_config
from enrich_assets.store.images import load_image

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "g1_v30"
CLEANVISION_CHECKS = {"blurry": {}, "dark": {}, "light": {}, "low_information": {}}


def save_keyframes(root: Path, folder: Path, per_episode: int) -> list[Path]:
    policy = KeyframePolicy(mode="count", count=per_episode)
    paths = []
    for ref in open_lerobot(root, root.name).episodes():
        for kf in extract_keyframes(ref, policy):
            path = folder / f"ep{ref.episode_index:03d}_f{kf.frame_index:04d}.png"
            Image.fromarray(kf.image).save(path, compress_level=1)
            paths.append(path)
    return paths


def quality_config() -> QualityConfig:
    cfg = dict(pipeline_config("quality"))
    w = cfg.pop("weights")
    return QualityConfig(**cfg, weights=(w["sharpness"], w["exposure"], w["completeness"]))


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_cleanvision(folder: Path, n_jobs: int | None) -> int:
    os.environ["TQDM_DISABLE"] = "1"  # its progress bars ignore verbose=False
    from cleanvision import Imagelab

    lab = Imagelab(data_path=str(folder), verbose=False)
    lab.find_issues(CLEANVISION_CHECKS, n_jobs=n_jobs, verbose=False)
    return len(lab.issues)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-episode", type=int, default=25, help="keyframes per episode")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("cleanvision").setLevel(logging.ERROR)
    cfg = quality_config()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = save_keyframes(args.data, folder, args.per_episode)
        arrays = [load_image(folder, p.name) for p in paths]
        if run_cleanvision(folder, 1) != len(paths):  # also imports cleanvision before timing
            raise RuntimeError("cleanvision did not score every image")
        figures = {
            "load PNG only (both sides pay it)": median_seconds(
                lambda: [load_image(folder, p.name) for p in paths], args.repeats
            ),
            "ours: load PNG + score_image": median_seconds(
                lambda: [score_image(load_image(folder, p.name), cfg) for p in paths], args.repeats
            ),
            "ours: score_image on decoded arrays": median_seconds(
                lambda: [score_image(a, cfg) for a in arrays], args.repeats
            ),
            "cleanvision, n_jobs=1": median_seconds(
                lambda: run_cleanvision(folder, 1), args.repeats
            ),
            "cleanvision, default n_jobs": median_seconds(
                lambda: run_cleanvision(folder, None), args.repeats
            ),
        }
    n = len(paths)
    shape = "x".join(str(s) for s in np.shape(arrays[0]))
    print(f"{n} keyframes ({shape}) of {args.data.name}; median of {args.repeats} repeats")
    print("| scorer | seconds | images/s |")
    print("|---|---|---|")
    for name, seconds in figures.items():
        print(f"| {name} | {seconds:.2f} | {n / seconds:.0f} |")
    load = figures["load PNG only (both sides pay it)"]
    ours = figures["ours: load PNG + score_image"]
    for name in ("cleanvision, n_jobs=1", "cleanvision, default n_jobs"):
        print(
            f"ratio vs {name}: {figures[name] / ours:.1f}x from files, "
            f"{(figures[name] - load) / (ours - load):.1f}x scoring only (load subtracted)"
        )


if __name__ == "__main__":
    main()
