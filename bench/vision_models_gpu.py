"""GPU throughput of the real-size vision models in bf16, end to end from decoded keyframes.

    .venv/bin/python bench/vision_models_gpu.py [--seconds 20] [--weights random|real]

For CLIP ViT-L/14, OWLv2-base and Depth Anything V2-Large: images/s at several batch sizes
(the registry's default among them), the best one, and the GPU utilisation measured with
nvidia-smi while it ran. `--weights random` (default) builds the real architectures with random
weights (same speed, no download); `real` loads them from the hub cache. Baseline in the same
run: batch size 1.
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time
from typing import Any

import numpy as np
from vision_models_cpu import KEYFRAME, LABELS, load, real_size_spec

from enrich_assets.models.registry import load_model_spec

MODELS = [
    ("embedding", "clip-vit-l-14"),
    ("detection", "owlv2-base"),
    ("depth", "depth-anything-v2-large"),
]


class Utilisation:
    """Mean GPU utilisation (%) from nvidia-smi samples taken while the block runs."""

    def __enter__(self) -> Utilisation:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
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
        self.thread.join()

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples)) if self.samples else float("nan")


def timed_run(model: Any, keyframes: list[np.ndarray], seconds: float) -> float:
    """images/s over whole batches for about `seconds`, after one warm-up batch."""
    import torch

    def items(n: int) -> list[tuple[int, np.ndarray]]:
        return [(i, keyframes[i % len(keyframes)]) for i in range(n)]

    def run(n: int) -> int:
        results = model.run(items(n), LABELS) if hasattr(model, "detect") else model.run(items(n))
        count = sum(1 for _ in results)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per setting")
    parser.add_argument("--weights", choices=["random", "real"], default="random")
    args = parser.parse_args()
    import torch

    assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU"
    print(torch.cuda.get_device_name(), "bf16", f"input {KEYFRAME}", f"weights {args.weights}")
    rng = np.random.default_rng(0)
    keyframes = [rng.integers(0, 256, (*KEYFRAME, 3), dtype=np.uint8) for _ in range(64)]
    for task, name in MODELS:
        spec = (
            real_size_spec(name)
            if args.weights == "random"
            else load_model_spec(task, overrides={"name": name})
        )
        model = load(spec, "cuda")
        default = model.batch_size
        results = {}
        for batch_size in sorted({1, default // 4, default // 2, default, default * 2} - {0}):
            model.batch_size = batch_size
            try:
                with Utilisation() as gpu:
                    rate = timed_run(model, keyframes, args.seconds)
            except torch.OutOfMemoryError:
                print(f"{name:26s} batch {batch_size:4d}  out of memory")
                torch.cuda.empty_cache()
                continue
            results[batch_size] = rate
            print(f"{name:26s} batch {batch_size:4d}  {rate:8.1f} img/s  GPU {gpu.mean:5.1f}%")
        best = max(results, key=results.__getitem__)
        print(
            f"{name:26s} best batch {best}: {results[best]:.1f} img/s, "
            f"{results[best] / results[1]:.1f}x batch 1"
        )
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
