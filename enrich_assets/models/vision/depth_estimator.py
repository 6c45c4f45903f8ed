"""Monocular depth with Depth Anything V2 (transformers), one float16 map per image at its size.

Relative checkpoints predict affine-invariant inverse depth (larger = nearer); metric ones
predict metres. An optional calibration `scale` from the spec multiplies the prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from enrich_assets.models.registry import ModelSpec, Provenance
from enrich_assets.models.vision import tiny
from enrich_assets.models.vision.batching import BatchedModel, groups_by_shape, image_tensors

if TYPE_CHECKING:
    import torch

PREPROCESSING_VERSION = 1

# one group of same-sized images: (their indices in the batch, processed pixels, (height, width))
DepthGroup = tuple[list[int], "torch.Tensor", tuple[int, int]]


class DepthEstimator(BatchedModel):
    def __init__(self, model: Any, processor: Any, spec: ModelSpec, revision: str, model_id: str):
        if spec.family != "depth_anything":
            raise ValueError(f"model {spec.name!r}: unknown depth family {spec.family!r}")
        self.model, self.processor = model, processor
        self.device, self.dtype = model.device, model.dtype
        self.batch_size = spec.batch_size_for(self.device)
        self.is_metric = getattr(model.config, "depth_estimation_type", "relative") == "metric"
        scale = spec.params.get("scale")
        self.scale = float(scale) if scale is not None else None
        preprocessing = f"hf-{type(processor).__name__}:v{PREPROCESSING_VERSION}"
        self.provenance = Provenance(model_id, revision, preprocessing, spec.licence)

    @property
    def model_id(self) -> str:
        return self.provenance.model_id

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """float16 HxW depth per image, at the image's own size."""
        return self(images)

    def prepare(self, images: list[np.ndarray]) -> list[DepthGroup]:
        """Images of one size share a resize (the processor keeps the aspect ratio)."""
        tensors = image_tensors(images, self.device)
        groups = []
        for shape, index in groups_by_shape(tensors).items():
            pixels = self.processor(
                images=[tensors[i] for i in index], return_tensors="pt", device=self.device
            )["pixel_values"]
            groups.append((index, pixels.to(self.dtype), (shape[1], shape[2])))
        return groups

    def infer(self, groups: list[DepthGroup]) -> list[np.ndarray]:
        import torch
        import torch.nn.functional as F

        maps: dict[int, np.ndarray] = {}
        with torch.inference_mode():
            for index, pixels, size in groups:
                predicted = self.model(pixel_values=pixels).predicted_depth.float()
                # bicubic, as the processor's post-processing; its overshoot below 0 is clipped
                depth = F.interpolate(predicted[:, None], size=size, mode="bicubic")[:, 0]
                depth = depth.clamp_min(0) * (self.scale or 1.0)
                for i, one in zip(index, depth.half().cpu().numpy(), strict=True):
                    maps[i] = one
        return [maps[i] for i in range(len(maps))]


def load_depth_estimator(spec: ModelSpec, device: str | None = None) -> DepthEstimator:
    """Load once per run; `device` overrides the spec's (auto: cuda > mps > cpu)."""
    model, processor, revision, model_id = tiny.load_model_and_processor(
        spec, "AutoModelForDepthEstimation", "AutoImageProcessor", device
    )
    return DepthEstimator(model, processor, spec, revision, model_id)
