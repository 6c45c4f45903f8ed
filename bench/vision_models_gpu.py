"""GPU throughput of the real-size vision models in bf16, end to end from the keyframe cache.

    .venv/bin/python bench/vision_models_gpu.py [--seconds 20] [--weights random|real]
    .venv/bin/python bench/vision_models_gpu.py --device cpu --weights tiny --seconds 1

For CLIP ViT-L/14, OWLv2-base and Depth Anything V2-Large: images/s at several batch sizes
(the registry's default among them), the best one, and the GPU utilisation measured with
nvidia-smi while it ran. The keyframes come the way the pipeline feeds them: cached
(`save_keyframes`, raw arrays) and read through `models/vision/feeder.feed` (loader threads)
into `run` (pinned batched copies, preprocessing on the device overlapping inference).
`--weights random` (default) builds the real architectures with random weights (same speed,
no download); `real` loads them from the hub cache; `tiny` uses the tiny test models (the
proof that the script works where no GPU is). Baseline in the same run: batch size 1.
Florence-2 is not in the model registry (schemas/models.yaml), so it is not measured.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from vision_models_cpu import KEYFRAME, LABELS, load, real_size_spec

from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.vision.feeder import feed
from enrich_assets.store.images import load_images, save_keyframes

MODELS = [
    ("embedding", "clip-vit-l-14"),
    ("detection", "owlv2-base"),
    ("depth", "depth-anything-v2-large"),
]


class Utilisation:
    """Mean GPU utilisation (%) from nvidia-smi samples taken while the block runs (nan on
    the CPU)."""

    def __init__(self, device: str) -> None:
        self.device = device

    def __enter__(self) -> Utilisation:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        if self.device == "cuda":
            self.thread.start()
        return self

    def _sample(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self.stop.wait(0.2):
            out = subprocess.run(query, capture_output=True, text=True).stdout.split()
            if out:
                self.samples.append(float(out[0]))

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples)) if self.samples else float("nan")


def timed_run(model: Any, cache: Path, refs: list[str], seconds: float, workers: int) -> float:
    """images/s over whole batches for about `seconds`, after one warm-up batch, fed from the
    keyframe cache."""
    import torch

    def run(n: int) -> int:
        items = [(i, refs[i % len(refs)]) for i in range(n)]
        images = feed(items, lambda r: load_images(cache, r), workers=workers)
        results = model.run(images, LABELS) if hasattr(model, "detect") else model.run(images)
        count = sum(1 for _ in results)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return count

    run(model.batch_size)
    start = time.perf_counter()
    count = run(model.batch_size)
    per_batch = time.perf_counter() - start
    batches = max(2, int(seconds / max(per_batch, 1e-3)))
    start = time.perf_counter()
    count = run(model.batch_size * batches)
    return count / (time.perf_counter() - start)


def model_for(task: str, name: str, weights: str, device: str) -> Any:
    if weights == "tiny":
        return load(load_model_spec(task, profile="tiny"), device)
    if weights == "random":
        return load(real_size_spec(name), device)
    return load(load_model_spec(task, overrides={"name": name}), device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per setting")
    parser.add_argument("--weights", choices=["random", "real", "tiny"], default="random")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--workers", type=int, default=4, help="feeder loader threads")
    args = parser.parse_args()
    import torch

    if args.device == "cuda":
        assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU (or --device cpu)"
        print(torch.cuda.get_device_name(), "bf16", end=" ")
    else:
        print("CPU (GPU figures not measured)", end=" ")
    print(f"input {KEYFRAME}", f"weights {args.weights}", f"feeder workers {args.workers}")
    rng = np.random.default_rng(0)
    keyframes = [rng.integers(0, 256, (*KEYFRAME, 3), dtype=np.uint8) for _ in range(64)]
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        refs = [r for i in range(0, 64, 8) for r in save_keyframes(cache, keyframes[i : i + 8])]
        for task, name in MODELS:
            model = model_for(task, name, args.weights, args.device)
            default = model.batch_size
            results = {}
            for batch_size in sorted({1, default // 4, default // 2, default, default * 2} - {0}):
                model.batch_size = batch_size
                try:
                    with Utilisation(args.device) as gpu:
                        rate = timed_run(model, cache, refs, args.seconds, args.workers)
                except torch.OutOfMemoryError:
                    print(f"{model.model_id:26s} batch {batch_size:4d}  out of memory")
                    torch.cuda.empty_cache()
                    continue
                results[batch_size] = rate
                print(
                    f"{model.model_id:26s} batch {batch_size:4d}  {rate:8.1f} img/s  "
                    f"GPU {gpu.mean:5.1f}%"
                )
            best = max(results, key=results.__getitem__)
            print(
                f"{model.model_id:26s} best batch {best}: {results[best]:.1f} img/s, "
                f"{results[best] / results[1]:.1f}x batch 1"
            )
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
