"""Build a VLM client from a plain settings dict (what a Dagster resource or YAML holds).

    backend: openai | transformers | local-stub
    model: gpt-4o-mini                  # hub id or folder for transformers
    base_urls: [https://api.openai.com/v1]   # openai; or base_url: one URL
    api_key_env: OPENAI_API_KEY         # NAME of the env var holding the key (none: no auth)
    temperature: 0.0                    # optional override of every request's
    max_tokens: 1024                    # optional cap on every request's
    timeout_s: 60
    concurrency: 16
    max_repairs: 2
    json_mode: true                     # send response_format json_object
    image_format: png                   # or jpeg
    retry: {initial_s: 1, max_s: 60, jitter: 0.2, max_attempts: 8}
    cache_dir: data/vlm_cache           # optional response cache
    latency_s: 0.0                      # local-stub only: simulated latency
    device: cpu                         # transformers only
    random_init: false                  # transformers only: tiny untrained Qwen2-VL

The keys each backend reads are `VLM_BACKEND_KEYS` in infra/settings.py, which checks the
settings file against the same table; any other key is an error naming it.

`local-stub` starts the local OpenAI-compatible stub server in-process and talks to it over
real HTTP; everything it answers is labelled `<model>:local-stub`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from enrich_assets.infra.redact import register_secret
from enrich_assets.infra.settings import VLM_BACKEND_KEYS
from enrich_assets.models.vlm.cache import ResponseCache
from enrich_assets.models.vlm.ledger import Budget
from enrich_assets.models.vlm.openai_client import OpenAIVLMClient, RetryPolicy
from enrich_assets.models.vlm.stub_server import LocalStubServer
from enrich_assets.models.vlm.types import VLMClient

log = logging.getLogger(__name__)

# The keys each backend reads (infra/settings.py checks the settings file against the same
# table); budget_usd is the caller's, it hands build_client a Budget instead.
_KEYS = {backend: keys - {"budget_usd"} for backend, keys in VLM_BACKEND_KEYS.items()}


def build_client(settings: dict[str, Any], *, budget: Budget | None = None) -> VLMClient:
    backend = settings.get("backend", "local-stub")
    if backend not in _KEYS:
        raise ValueError(f"VLM backend {backend!r} unknown; use one of {sorted(_KEYS)}")
    if "api_key" in settings:
        raise ValueError(
            "VLM settings must not hold an API key: put it in an environment variable and "
            "name that variable in api_key_env"
        )
    unknown = set(settings) - _KEYS[backend]
    if unknown:
        raise ValueError(f"VLM settings for backend {backend!r}: unknown keys {sorted(unknown)}")
    cache = ResponseCache(Path(settings["cache_dir"])) if settings.get("cache_dir") else None
    common: dict[str, Any] = {
        "max_repairs": settings.get("max_repairs", 2),
        "temperature": settings.get("temperature"),
        "max_tokens": settings.get("max_tokens"),
        "cache": cache,
        "budget": budget,
    }
    if backend == "transformers":
        return _transformers_client(settings, common)
    retry = RetryPolicy(**settings.get("retry", {}))
    if backend == "local-stub":
        server = LocalStubServer(
            settings.get("model", "stub-vlm"), latency_s=settings.get("latency_s", 0.0)
        ).start()
        model, base_urls, api_key = server.model, [server.base_url], None
        common["owned_server"] = server
    else:
        model = _required(settings, "model")
        base_urls = settings.get("base_urls") or [_required(settings, "base_url")]
        api_key = _api_key(settings)
    client = OpenAIVLMClient(
        model,
        base_urls,
        api_key=api_key,
        timeout_s=settings.get("timeout_s", 60.0),
        concurrency=settings.get("concurrency", 16),
        retry=retry,
        json_mode=settings.get("json_mode", True),
        image_format=settings.get("image_format", "png"),
        **common,
    )
    log.info("VLM client: backend=%s %r", backend, client)
    return client


def _transformers_client(settings: dict[str, Any], common: dict[str, Any]) -> VLMClient:
    from enrich_assets.models.vlm.transformers_client import (
        TransformersVLMClient,
        tiny_random_qwen2_vl,
    )

    if "min_new_tokens" in settings:
        common["min_new_tokens"] = settings["min_new_tokens"]
    if settings.get("random_init"):
        client = tiny_random_qwen2_vl(**common)
    else:
        client = TransformersVLMClient.from_pretrained(
            _required(settings, "model"),
            device=settings.get("device", "cpu"),
            dtype=settings.get("dtype", "auto"),
            **common,
        )
    log.info("VLM client: backend=transformers %r", client)
    return client


def _required(settings: dict[str, Any], key: str) -> Any:
    if not settings.get(key):
        raise ValueError(f"VLM settings for backend {settings.get('backend')!r} need {key!r}")
    return settings[key]


def _api_key(settings: dict[str, Any]) -> str | None:
    """None when no api_key_env is named (a vLLM server without auth)."""
    name = settings.get("api_key_env")
    if not name:
        return None
    key = os.environ.get(name)
    if not key:
        raise ValueError(f"environment variable {name} (api_key_env) is not set or empty")
    register_secret(key)
    return key
