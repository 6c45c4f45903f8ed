"""Image (and text) embeddings: open_clip models, or DINOv2 through transformers.

Output rows are float32, L2-normalised, `dim` wide. open_clip models keep their text tower and
tokenizer, so the same loaded model serves text -> frame search.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from enrich_assets.models.registry import ModelSpec, Provenance, resolve_device, resolve_dtype
from enrich_assets.models.vision import tiny
from enrich_assets.models.vision.batching import BatchedModel, groups_by_shape, image_tensors
from enrich_assets.models.weights import (
    RANDOM_INIT,
    hub_cache,
    hub_offline,
    load_transformers,
    missing_weights,
    transformers_revision,
    weights_digest,
)

if TYPE_CHECKING:
    import torch

PREPROCESSING_VERSION = 1


class ImageEmbedder(BatchedModel):
    provenance: Provenance
    dim: int

    @property
    def model_id(self) -> str:
        return self.provenance.model_id

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, dim) float32, each row of norm 1."""
        rows = self(images)
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError(f"{self.model_id} has no text tower; use an open_clip model")


def _normalised(features: torch.Tensor) -> np.ndarray:
    import torch

    return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


class OpenClipEmbedder(ImageEmbedder):
    """Preprocessing mirrors open_clip's transform, done on tensors on the model's device."""

    def __init__(self, model: Any, tokenizer: Any, spec: ModelSpec, revision: str, model_id: str):
        import open_clip
        import torch

        self.model, self.tokenizer = model, tokenizer
        self.device, self.dtype = model.logit_scale.device, model.logit_scale.dtype
        self.batch_size = spec.batch_size_for(self.device)
        self.dim = int(open_clip.get_model_config(spec.id)["embed_dim"])
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg["size"]
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.resize_mode = cfg.get("resize_mode", "shortest")
        self.interpolation = cfg.get("interpolation", "bicubic")
        self.mean = torch.tensor(cfg["mean"], device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(cfg["std"], device=self.device).view(1, 3, 1, 1) * 255
        preprocessing = (
            f"torch-{self.resize_mode}-{self.interpolation}-{self.size[0]}x{self.size[1]}"
            f":v{PREPROCESSING_VERSION}"
        )
        self.provenance = Provenance(model_id, revision, preprocessing, spec.licence)

    def prepare(self, images: list[np.ndarray]) -> torch.Tensor:
        import torch

        tensors = image_tensors(images, self.device)
        out = torch.empty((len(tensors), 3, *self.size), device=self.device, dtype=self.dtype)
        for shape, index in groups_by_shape(tensors).items():
            batch = torch.stack([tensors[i] for i in index]).float()
            out[index] = ((self._resize(batch, shape[1:]) - self.mean) / self.std).to(self.dtype)
        return out

    def _resize(self, batch: torch.Tensor, hw: tuple[int, ...]) -> torch.Tensor:
        import torch.nn.functional as F

        target_h, target_w = self.size
        if self.resize_mode == "squash":
            size = (target_h, target_w)
        else:  # "shortest": shorter side to the target, then a centre crop
            scale = max(target_h / hw[0], target_w / hw[1])
            size = (max(target_h, int(hw[0] * scale)), max(target_w, int(hw[1] * scale)))
        batch = F.interpolate(batch, size=size, mode=self.interpolation, antialias=True)
        top, left = (size[0] - target_h) // 2, (size[1] - target_w) // 2
        return batch[:, :, top : top + target_h, left : left + target_w].clamp(0, 255)

    def infer(self, batch: torch.Tensor) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            return list(_normalised(self.model.encode_image(batch)))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tokens = self.tokenizer(texts).to(self.device)
            return _normalised(self.model.encode_text(tokens))


class Dinov2Embedder(ImageEmbedder):
    """The CLS token of DINOv2 (after its final layer norm)."""

    def __init__(self, model: Any, processor: Any, spec: ModelSpec, revision: str, model_id: str):
        self.model, self.processor = model, processor
        self.device, self.dtype = model.device, model.dtype
        self.batch_size = spec.batch_size_for(self.device)
        self.dim = int(model.config.hidden_size)
        preprocessing = f"hf-{type(processor).__name__}:v{PREPROCESSING_VERSION}"
        self.provenance = Provenance(model_id, revision, preprocessing, spec.licence)

    def prepare(self, images: list[np.ndarray]) -> torch.Tensor:
        tensors = image_tensors(images, self.device)
        pixels = self.processor(images=tensors, return_tensors="pt", device=self.device)
        return pixels["pixel_values"].to(self.dtype)

    def infer(self, batch: torch.Tensor) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            return list(_normalised(self.model(pixel_values=batch).pooler_output))


def load_image_embedder(spec: ModelSpec, device: str | None = None) -> ImageEmbedder:
    """Load once per run; `device` overrides the spec's (auto: cuda > mps > cpu)."""
    torch_device = resolve_device(device or spec.device)
    dtype = resolve_dtype(spec.dtype, torch_device)
    if spec.family == "open_clip":
        model, revision, model_id = _open_clip_model(spec)
        import open_clip

        tokenizer = open_clip.get_tokenizer(spec.id)
        model = model.to(device=torch_device, dtype=dtype).eval()
        return OpenClipEmbedder(model, tokenizer, spec, revision, model_id)
    if spec.family == "dinov2":
        if spec.random_init:
            model, processor = tiny.build_transformers(spec)
            revision, model_id = RANDOM_INIT, tiny.random_init_id(spec)
        else:
            from transformers import AutoImageProcessor, AutoModel

            model = load_transformers(AutoModel, spec).eval()
            processor = load_transformers(AutoImageProcessor, spec)
            revision, model_id = transformers_revision(spec), spec.id
        model = model.to(device=torch_device, dtype=dtype)
        return Dinov2Embedder(model, processor, spec, revision, model_id)
    raise ValueError(f"model {spec.name!r}: unknown embedding family {spec.family!r}")


def _open_clip_model(spec: ModelSpec) -> tuple[Any, str, str]:
    """(model on CPU in float32, weights revision, model id) from a tag, a file, or random init."""
    import open_clip

    if spec.random_init:
        return tiny.build_open_clip(spec), RANDOM_INIT, tiny.random_init_id(spec)
    if not spec.pretrained:
        raise ValueError(f"model {spec.name!r}: open_clip needs `pretrained` (a tag or a file)")
    tag_cfg = open_clip.get_pretrained_cfg(spec.id, spec.pretrained)
    checkpoint = _checkpoint_file(spec, tag_cfg)
    keys = ("mean", "std", "interpolation", "resize_mode")
    preprocess = {k: tag_cfg[k] for k in keys if k in tag_cfg}
    model = open_clip.create_model(
        spec.id,
        pretrained=str(checkpoint),
        force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
        force_preprocess_cfg=preprocess or None,
        weights_only=True,
    )
    model_id = f"{spec.id}/{spec.pretrained if tag_cfg else checkpoint.name}"
    return model, weights_digest([checkpoint]), model_id


def _checkpoint_file(spec: ModelSpec, tag_cfg: dict[str, Any]) -> Path:
    """The local checkpoint for a pretrained tag (hub cache) or file path."""
    assert spec.pretrained is not None
    if not tag_cfg:
        path = Path(spec.pretrained).expanduser()
        if path.is_file():
            return path
        raise missing_weights(
            spec, f"file {path}", "hf download <repo> <checkpoint file>", "pretrained (a file)"
        )
    if not tag_cfg.get("hf_hub"):
        url = tag_cfg.get("url", "?")
        raise missing_weights(
            spec, "nowhere (the tag has no hub copy)", f"curl -LO {url}", "pretrained (a file)"
        )
    from huggingface_hub import hf_hub_download

    repo, filename = os.path.split(tag_cfg["hf_hub"])
    filename = filename or "open_clip_pytorch_model.bin"
    safe = ["open_clip_model.safetensors"] if filename == "open_clip_pytorch_model.bin" else []
    errors = []
    for name in [*safe, filename]:
        try:
            return Path(
                hf_hub_download(
                    repo,
                    name,
                    revision=spec.revision,
                    cache_dir=hub_cache(),
                    local_files_only=hub_offline(),
                )
            )
        except Exception as err:  # not cached / not on the hub: try the next name, then report
            errors.append(f"{name}: {type(err).__name__}")
    raise missing_weights(
        spec,
        f"Hugging Face cache {hub_cache()} for {repo} ({'; '.join(errors)})",
        f"hf download {repo} {filename}",
        "pretrained (a checkpoint file)",
    )
