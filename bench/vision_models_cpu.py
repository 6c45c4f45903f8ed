"""CPU throughput of the vision models, tiny and at real size (random weights run at real speed).

    .venv/bin/python bench/vision_models_cpu.py [--batches 2] [--only tiny-florence2]

Inputs are 480x640 uint8 keyframes, as decoded. Each model runs through `run()` (packed
batches, next batch prepared on a thread). Baseline in the same run: open_clip's own PIL
transform one image at a time, against our tensor preprocessing of the same images.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import numpy as np

from enrich_assets.models.registry import ModelSpec, load_model_spec
from enrich_assets.models.vision.depth_estimator import load_depth_estimator
from enrich_assets.models.vision.detector import load_detector
from enrich_assets.models.vision.florence2 import load_florence2_detector
from enrich_assets.models.vision.image_embedder import load_image_embedder

LABELS = ["cube", "bottle", "cup", "bowl", "robot gripper", "human hand", "table"]
KEYFRAME = (480, 640)


def real_size_spec(name: str) -> ModelSpec:
    """A registry entry at its real architecture, random-init (the same speed, no download)."""
    import open_clip

    spec = load_model_spec(_task(name), overrides={"name": name})
    if spec.family == "open_clip":
        config = open_clip.get_model_config(spec.id)
        return dataclasses.replace(spec, random_init=True, config=config)
    configs: dict[str, dict[str, Any]] = {
        "owlv2-base": {
            "projection_dim": 512,
            "text_config": {"max_position_embeddings": 16},
            "vision_config": {"image_size": 960, "patch_size": 16},
        },
        "depth-anything-v2-large": {
            "backbone_config": {
                "model_type": "dinov2",
                "hidden_size": 1024,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "patch_size": 14,
                "image_size": 518,
                "out_indices": [5, 12, 18, 24],
                "reshape_hidden_states": False,
            },
            "reassemble_hidden_size": 1024,
            "patch_size": 14,
            "neck_hidden_sizes": [256, 512, 1024, 1024],
            "fusion_hidden_size": 256,
        },
    }
    return dataclasses.replace(spec, random_init=True, config={"model": configs[name]})


def _task(name: str) -> str:
    if "clip" in name:
        return "embedding"
    return "detection" if "owl" in name or "florence" in name else "depth"


def load(spec: ModelSpec, device: str) -> Any:
    if spec.family == "florence2":
        return load_florence2_detector(spec, device=device)
    loader = {"embedding": load_image_embedder, "detection": load_detector}
    return loader.get(spec.task, load_depth_estimator)(spec, device=device)


def images_per_second(model: Any, keyframes: list[np.ndarray], batches: int) -> float:
    """End to end from decoded keyframes; the first batch warms up and is not timed."""
    n = model.batch_size * (batches + 1)
    items = [(i, keyframes[i % len(keyframes)]) for i in range(n)]
    results = iter(model.run(items, LABELS) if hasattr(model, "detect") else model.run(items))
    for _ in range(model.batch_size):
        next(results)
    start = time.perf_counter()
    count = sum(1 for _ in results)
    return count / (time.perf_counter() - start)


def preprocessing_speedup(keyframes: list[np.ndarray]) -> tuple[float, float]:
    """(PIL per image, torch tensors) images/s for the CLIP preprocessing of 480x640 frames."""
    import open_clip
    import torch
    from PIL import Image

    clip = load_image_embedder(load_model_spec("embedding", "tiny"), device="cpu")
    cfg = open_clip.get_model_preprocess_cfg(clip.model)
    clip.size = (224, 224)  # the real model's input size
    pil = open_clip.image_transform(224, is_train=False, mean=cfg["mean"], std=cfg["std"])
    start = time.perf_counter()
    torch.stack([pil(Image.fromarray(k)) for k in keyframes])
    pil_rate = len(keyframes) / (time.perf_counter() - start)
    start = time.perf_counter()
    clip.prepare(keyframes)
    return pil_rate, len(keyframes) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=2, help="timed batches per model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", help="run one model (a registry name), no preprocessing figure")
    args = parser.parse_args()
    import torch

    print(f"torch threads {torch.get_num_threads()}, device {args.device}, input {KEYFRAME}")
    rng = np.random.default_rng(0)
    keyframes = [rng.integers(0, 256, (*KEYFRAME, 3), dtype=np.uint8) for _ in range(16)]
    if args.only:
        spec = load_model_spec(_task(args.only), overrides={"name": args.only})
        rate = images_per_second(load(spec, args.device), keyframes, args.batches)
        print(
            f"{spec.name:28s} batch {spec.batch_size_for(torch.device(args.device)):3d}  "
            f"{rate:8.2f} img/s"
        )
        return
    pil_rate, torch_rate = preprocessing_speedup(keyframes)
    print(
        f"CLIP preprocessing 480x640->224: PIL per image {pil_rate:.0f} img/s, "
        f"torch batched {torch_rate:.0f} img/s, ratio {torch_rate / pil_rate:.1f}x"
    )
    for task, real in [
        ("embedding", "clip-vit-l-14"),
        ("detection", "owlv2-base"),
        ("depth", "depth-anything-v2-large"),
    ]:
        for size, spec in [("tiny", load_model_spec(task, "tiny")), ("real", real_size_spec(real))]:
            model = load(spec, args.device)
            if size == "real":
                model.batch_size = 2  # a few images: real-size models are slow on 2 CPU cores
            rate = images_per_second(model, keyframes, args.batches)
            print(f"{spec.name:28s} {size:4s} batch {model.batch_size:3d}  {rate:8.2f} img/s")
            del model
    florence = load(load_model_spec("detection", "tiny-florence"), args.device)
    rate = images_per_second(florence, keyframes, args.batches)
    print(f"{'tiny-florence2':28s} tiny batch {florence.batch_size:3d}  {rate:8.2f} img/s")


if __name__ == "__main__":
    main()
