"""Load the model of a vision task, counting loads per process (so a test, or a Ray actor's
stats, can show a model is loaded once and reused, never once per batch)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from enrich_assets.models.registry import ModelSpec

VISION_TASKS = ("embedding", "detection", "depth")
LOADS: Counter[str] = Counter()  # models loaded by this process, by name (Ray actors report it)


def load_vision_model(spec: ModelSpec, device: str | None = None) -> Any:
    """The loaded model for the spec's task (embedding, detection or depth)."""
    LOADS[spec.name] += 1
    if spec.task == "embedding":
        from enrich_assets.models.vision.image_embedder import load_image_embedder

        return load_image_embedder(spec, device)
    if spec.task == "detection":
        from enrich_assets.models.vision.detector import load_detector

        return load_detector(spec, device)
    if spec.task == "depth":
        from enrich_assets.models.vision.depth_estimator import load_depth_estimator

        return load_depth_estimator(spec, device)
    raise ValueError(f"model {spec.name!r}: task {spec.task!r} is not one of {VISION_TASKS}")
