"""Quality scoring throughput: ours (`score_image`) against cleanvision's issue checks.

.venv/bin/python bench/quality_scoring.py [--per-episode 25] [--repeats 3]
(needs the bench extra: `uv pip install cleanvision`)

Keyframes of the real G1 episodes (640x480) are decoded once and saved twice in a temp
folder: as PNG files (what cleanvision reads) and in the pipeline's keyframe cache (one raw
memory-mapped array per episode, `store/images.save_keyframes`). Both sides read the same
images from files and score every one: ours loads them from the cache (`load_images`, as
`tech_quality` does) and runs `score_image` (sharpness, brightness, completeness);
cleanvision runs the checks that compare (blurry, dark, light, low_information) on the PNG
folder. cleanvision is timed with one worker and with its default (one worker per core).
Ours from the PNGs is timed too, for reference. Median of repeats, images/s.
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
from enrich_assets.store.images import load_image, load_images, save_keyframes

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "g1_v30"
CLEANVISION_CHECKS = {"blurry": {}, "dark": {}, "light": {}, "low_information": {}}


def save_both(root: Path, folder: Path, per_episode: int) -> tuple[list[Path], list[str]]:
    """The keyframes as PNG files and as the pipeline's cache (the same pixels)."""
    policy = KeyframePolicy(mode="count", count=per_episode)
    paths: list[Path] = []
    refs: list[str] = []
    for ref in open_lerobot(root, root.name).episodes():
        frames = extract_keyframes(ref, policy)
        for kf in frames:
            path = folder / f"ep{ref.episode_index:03d}_f{kf.frame_index:04d}.png"
            Image.fromarray(kf.image).save(path, compress_level=1)
            paths.append(path)
        refs.extend(save_keyframes(folder.parent / "cache", [kf.image for kf in frames]))
    return paths, refs


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
        folder = Path(tmp) / "png"
        folder.mkdir()
        cache = Path(tmp) / "cache"
        paths, refs = save_both(args.data, folder, args.per_episode)
        arrays = [load_image(folder, p.name) for p in paths]
        if not all(
            np.array_equal(a, b) for a, b in zip(arrays, load_images(cache, refs), strict=True)
        ):
            raise RuntimeError("the cache and the PNG files hold different pixels")
        if run_cleanvision(folder, 1) != len(paths):  # also imports cleanvision before timing
            raise RuntimeError("cleanvision did not score every image")
        figures = {
            "load from the keyframe cache only": median_seconds(
                lambda: load_images(cache, refs), args.repeats
            ),
            "ours: load from the keyframe cache + score_image": median_seconds(
                lambda: [score_image(a, cfg) for a in load_images(cache, refs)], args.repeats
            ),
            "load PNG only": median_seconds(
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
    ours = figures["ours: load from the keyframe cache + score_image"]
    png = figures["ours: load PNG + score_image"]
    for name in ("cleanvision, n_jobs=1", "cleanvision, default n_jobs"):
        print(
            f"ratio vs {name}: {figures[name] / ours:.1f}x from files (our cache), "
            f"{figures[name] / png:.1f}x from the same PNG files"
        )


if __name__ == "__main__":
    main()
