"""Model specs from schemas/models.yaml, and where and in which precision a model runs.

One registry for every vision model and the sentence model that compares texts: a run picks a
spec per task (through a profile, a named entry, or overrides), loads the model once, and
shares it across all partitions.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from enrich_assets.infra.paths import schema_file

if TYPE_CHECKING:
    import torch

TASKS = ("embedding", "detection", "depth", "sentence")
DEVICE_ENV = "ENRICH_DEVICE"  # e.g. "cpu" or "cuda:1"; overrides the automatic choice


RESOURCE_KEYS = ("num_gpus", "num_cpus", "memory_gb")


@dataclass(frozen=True)
class ModelResources:
    """What one worker holding the model asks the cluster for (compute backend `ray`): whole
    or fractional GPUs and CPUs, and memory in GiB. The local backend ignores them."""

    num_gpus: float = 0.0
    num_cpus: float = 1.0
    memory_gb: float = 2.0

    @classmethod
    def parse(cls, raw: Any, where: str) -> ModelResources:
        """From the `resources:` mapping of a models.yaml entry; `where` names it in errors."""
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: resources must be a mapping of {', '.join(RESOURCE_KEYS)}")
        if unknown := sorted(set(raw) - set(RESOURCE_KEYS)):
            raise ValueError(f"{where}: unknown resources {unknown} (known: {list(RESOURCE_KEYS)})")
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{where}: resources.{key} must be a number >= 0, got {value!r}")
        if raw.get("memory_gb") == 0:
            raise ValueError(f"{where}: resources.memory_gb must be > 0")
        return cls(**{k: float(v) for k, v in raw.items()})


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str
    family: str
    id: str
    pretrained: str | None = None
    revision: str | None = None
    dtype: str = "auto"
    batch_size: dict[str, int] = field(default_factory=lambda: {"cpu": 4})
    image_size: int = 224
    random_init: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    resources: ModelResources = ModelResources()

    def batch_size_for(self, device: torch.device) -> int:
        return int(self.batch_size.get(device.type, self.batch_size.get("cpu", 4)))


@dataclass(frozen=True)
class Provenance:
    """What every enrichment row records about the model that produced it."""

    model_id: str  # "ViT-L-14/openai", a hub id, or "<name>:random-init"
    model_revision: str  # hub commit, "sha256:<hex>" of a local checkpoint, or "random-init"
    preprocessing: str  # version of the image preprocessing that fed the model


def load_model_spec(
    task: str,
    profile: str = "real",
    overrides: dict[str, Any] | None = None,
    path: Path | None = None,
) -> ModelSpec:
    """The spec for `task` under `profile`; overrides may name another entry (`name`) or set fields.

    Example: load_model_spec("embedding", overrides={"name": "dinov2-base", "device": "cpu"}).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    path = path or schema_file("models.yaml")
    registry = yaml.safe_load(path.read_text())
    overrides = dict(overrides or {})
    if profile not in registry["profiles"]:
        raise ValueError(f"{path}: no profile {profile!r}; have {sorted(registry['profiles'])}")
    name = overrides.pop("name", None) or registry["profiles"][profile][task]
    if name not in registry["models"]:
        raise ValueError(f"{path}: no model {name!r}; have {sorted(registry['models'])}")
    entry = {**registry["models"][name], **overrides}
    known = {f.name for f in dataclasses.fields(ModelSpec)}
    if unknown := set(entry) - known:
        raise ValueError(f"{path}: model {name!r} has unknown fields {sorted(unknown)}")
    entry["resources"] = ModelResources.parse(entry.get("resources", {}), f"{path}: {name}")
    spec = ModelSpec(name=name, **entry)
    if spec.task != task:
        raise ValueError(f"{path}: model {name!r} is for task {spec.task!r}, not {task!r}")
    return spec


def resolve_device(preference: str | None = "auto") -> torch.device:
    """cuda > mps > cpu, unless `preference` or $ENRICH_DEVICE names one."""
    import torch

    choice = os.environ.get(DEVICE_ENV) if preference in (None, "auto") else preference
    if choice and choice != "auto":
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Half precision on accelerators (bf16 where CUDA supports it), float32 on CPU."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32
