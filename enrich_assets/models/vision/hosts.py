"""Where a vision model runs: in this process (`local`), or in Ray actors (`ray`,
models/vision/ray_host.py). Both hand out a model with the same interface (`run(items, *args)`,
`provenance`, `model_id`, `oom_splits`, and the task's own attributes such as `dim`), so the
asset using it does not know where it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from enrich_assets.infra.settings import ComputeSettings
from enrich_assets.models.registry import ModelSpec
from enrich_assets.models.vision.loading import load_vision_model


class ModelHost(Protocol):
    def open(self, spec: ModelSpec) -> Any:
        """The model, loaded (once) where this host runs models."""

    def close(self, model: Any) -> None:
        """Free what `open` took (the actors and their GPUs, for Ray)."""

    def describe(self, model: Any) -> dict[str, Any]:
        """Asset metadata: where the model ran, how often it was loaded and called."""


class LocalHost:
    """Models in the step's own process, on `device` (auto: cuda > mps > cpu)."""

    def __init__(self, device: str = "auto"):
        self.device = device

    def open(self, spec: ModelSpec) -> Any:
        return load_vision_model(spec, self.device)

    def close(self, model: Any) -> None:
        """Nothing to free: the model goes with its last reference."""

    def describe(self, model: Any) -> dict[str, Any]:
        return {"compute": "local"}


def model_host(compute: ComputeSettings, device: str = "auto") -> ModelHost:
    if compute.backend == "ray":
        from enrich_assets.models.vision.ray_host import RayHost

        return RayHost(compute, device)
    return LocalHost(device)


@contextmanager
def hosted_model(host: ModelHost, spec: ModelSpec) -> Iterator[Any]:
    """The model for the duration of a `with` block (one asset step), then freed."""
    model = host.open(spec)
    try:
        yield model
    finally:
        host.close(model)
