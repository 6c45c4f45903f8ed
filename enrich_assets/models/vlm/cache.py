"""On-disk cache of good VLM replies, so re-running an unchanged partition makes no calls.

Keyed by (model, kind, system prompt, prompt, image content hashes, sampling params). Only
replies that parsed are stored: a quarantined item gets a fresh chance on the next run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

from enrich_assets.infra.files import write_text_atomic
from enrich_assets.infra.pixels import pixel_hash
from enrich_assets.models.vlm.types import VLMReply, VLMRequest


def cache_key(model: str, request: VLMRequest) -> str:
    key = {
        "model": model,
        "kind": request.kind,
        "system": request.system,
        "prompt": request.prompt,
        "images": [pixel_hash(im) for im in request.images],
        "json_output": request.json_output,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class ResponseCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> VLMReply | None:
        """The stored reply, marked cached and costing nothing this time."""
        try:
            data = json.loads(self._path(key).read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return None  # a damaged entry is a miss; the next put overwrites it
        reply = VLMReply(**data)
        return replace(reply, cached=True, input_tokens=0, output_tokens=0, latency_s=0.0)

    def put(self, key: str, reply: VLMReply) -> None:
        if reply.error is not None:
            return
        path = self._path(key)
        write_text_atomic(path, json.dumps(asdict(reply)))
