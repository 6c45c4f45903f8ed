"""Finding pretrained weights: hub id or local path, offline mode, one clear error when absent.

Also names the exact weights a model was built from (hub commit or file hash) for provenance.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from enrich_assets.models.registry import ModelSpec

RANDOM_INIT = "random-init"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class MissingWeightsError(RuntimeError):
    """A model's weights are not where the config says; the message says how to fix it."""


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub only reads it at import)."""
    import huggingface_hub

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return env or huggingface_hub.is_offline_mode()


def hub_cache() -> str:
    """$HF_HUB_CACHE as set now, else huggingface_hub's default."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE", constants.HF_HUB_CACHE)


def missing_weights(spec: ModelSpec, looked_in: str, download: str, setting: str) -> Exception:
    mode = "offline mode (HF_HUB_OFFLINE=1)" if hub_offline() else "online mode"
    return MissingWeightsError(
        f"No weights for {spec.task} model {spec.name!r} ({spec.id}"
        f"{'/' + spec.pretrained if spec.pretrained else ''}). Looked in: {looked_in}, {mode}. "
        f"Fix: on a machine with network run `{download}` and copy the cache to {hub_cache()} "
        f"(or set HF_HUB_CACHE), or point `{setting}` of model {spec.name!r} in "
        f"schemas/models.yaml (or the run's model overrides) at a local copy."
    )


def load_transformers(loader: Any, spec: ModelSpec, **kwargs: Any) -> Any:
    """`loader.from_pretrained` for a hub id or a local folder; a clear error when absent."""
    local = Path(spec.id).expanduser()
    if local.is_absolute():
        looked_in = f"local folder {local}"
    else:
        looked_in = f"Hugging Face cache {hub_cache()}"
    revision = f" --revision {spec.revision}" if spec.revision else ""
    try:
        return loader.from_pretrained(
            str(local) if local.is_absolute() else spec.id,
            revision=spec.revision,
            cache_dir=hub_cache(),
            local_files_only=hub_offline(),
            **kwargs,
        )
    except OSError as err:
        raise missing_weights(
            spec, looked_in, f"hf download {spec.id}{revision}", "id (a local folder)"
        ) from err


def transformers_revision(spec: ModelSpec) -> str:
    """Hub commit of the cached snapshot, or the hash of a local folder's weight files."""
    local = Path(spec.id).expanduser()
    if local.is_dir():
        files = sorted(local.glob("*.safetensors")) or sorted(local.glob("*.bin"))
        return weights_digest(files)
    from huggingface_hub import snapshot_download

    snapshot = snapshot_download(
        spec.id, revision=spec.revision, cache_dir=hub_cache(), local_files_only=True
    )
    return Path(snapshot).name


def weights_digest(files: list[Path]) -> str:
    """sha256 of the weight files; free for hub-cache files, whose blob name is their sha256."""
    total = hashlib.sha256()
    for file in files:
        real = Path(file).resolve()
        if real.parent.name == "blobs" and _SHA256.fullmatch(real.name):
            total.update(real.name.encode())
            continue
        digest = hashlib.sha256()
        with real.open("rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
        total.update(digest.hexdigest().encode())
    return "sha256:" + total.hexdigest()
