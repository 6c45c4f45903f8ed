"""The feeder's images/s into a no-op model at CLIP's input size, and its scaling with workers.

    PYTHONPATH=$PWD .venv/bin/python bench/feeder.py [--per-episode 25] [--passes 3]

Keyframes of the real G1 episodes (640x480, 25 per episode) are decoded once and written
twice into a temp folder: the pipeline's keyframe cache (`save_keyframes`, one raw array per
episode) and PNG files (the cache before issue 14). Each side then feeds every keyframe
`--passes` times through `feed` into a model whose `prepare` is CLIP's (tensor resize to
224x224, centre crop, normalise: `OpenClipEmbedder.prepare`, on the CPU here) and whose
`infer` does nothing, via `run_batched` (batch 64, prepare on a background thread). Loader
workers 0 (inline), 1, 2, 4. Baseline in the same run: PNG files, workers 0. Also timed:
loading alone (no model). Best of 2 runs per setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.vision.feeder import feed
from enrich_assets.models.vision.image_embedder import load_image_embedder
from enrich_assets.store.images import load_images, save_keyframes

CLIP_INPUT = (224, 224)
BATCH = 64
WORKERS = (0, 1, 2, 4)


def default_data() -> Path:
    """../shared/data/real/g1_v30 from the checkout (a worktree sits one level deeper)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "real" / "g1_v30"
        if candidate.is_dir():
            return candidate
    raise SystemExit("real fixture g1_v30 not found")


def write_both(data: Path, folder: Path, per_episode: int) -> tuple[list[str], list[str]]:
    """(cache references, PNG file names) of the same keyframes."""
    policy = KeyframePolicy(mode="count", count=per_episode)
    refs, pngs = [], []
    for ref in open_lerobot(data, data.name).episodes():
        images = [kf.image for kf in extract_keyframes(ref, policy)]
        refs.extend(save_keyframes(folder, images))
        for i, image in enumerate(images):
            name = f"ep{ref.episode_index:03d}_{i:02d}.png"
            Image.fromarray(image).save(folder / name, compress_level=1)
            pngs.append(name)
    return refs, pngs


def noop_clip() -> Any:
    """open_clip's preprocessing at CLIP ViT-L/14's input size; a model that does nothing."""
    spec = load_model_spec("embedding", "tiny")
    model = load_image_embedder(dataclasses.replace(spec, batch_size={"cpu": BATCH}), "cpu")
    model.size = CLIP_INPUT
    model.infer = lambda batch: [None] * len(batch)
    return model


def best_rate(work: Callable[[], Iterator[Any]], n: int) -> float:
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        count = sum(1 for _ in work())
        assert count == n, (count, n)
        rates.append(n / (time.perf_counter() - start))
    return max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--per-episode", type=int, default=25)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    model = noop_clip()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        refs, pngs = write_both(args.data or default_data(), folder, args.per_episode)
        sources = {"cache": refs, "png": pngs}
        n = len(refs) * args.passes

        def items(source: str) -> list[tuple[int, str]]:
            return list(enumerate(sources[source] * args.passes))

        def load(names: list[str]) -> list[np.ndarray]:
            return load_images(folder, names)

        print(
            f"{len(refs)} keyframes x {args.passes} passes, 640x480 -> {CLIP_INPUT}, batch {BATCH}"
        )
        print(
            "| source | workers | load only img/s | feeder + CLIP preprocess + no-op model img/s |"
        )
        print("|---|---|---|---|")
        baseline = None
        for source in ("png", "cache"):
            for workers in WORKERS:
                if source == "png" and workers not in (0, 2):
                    continue
                todo = items(source)
                loading = best_rate(lambda: feed(todo, load, workers=workers), n)  # noqa: B023
                fed = best_rate(lambda: model.run(feed(todo, load, workers=workers)), n)  # noqa: B023
                baseline = baseline or fed
                print(
                    f"| {source} | {workers} | {loading:.0f} | {fed:.0f} "
                    f"({fed / baseline:.1f}x png, workers 0) |"
                )


if __name__ == "__main__":
    main()
