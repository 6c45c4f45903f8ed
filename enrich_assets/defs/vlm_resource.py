"""The VLM settings of a run: the `vlm:` and `language:` sections of the settings file, and
the resource that builds one client per asset step from them."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.models.vlm.ledger import (
    Budget,
    load_prices,
    price_for,
)
from enrich_assets.models.vlm.types import VLMClient


def settings_section(name: str) -> dict[str, Any]:
    """One section of the settings file (enrich-assets.yaml), empty if absent."""
    path = Path(os.environ.get("ENRICH_SETTINGS", "enrich-assets.yaml"))
    data = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    return dict(data.get(name) or {})


def vlm_config() -> dict[str, Any]:
    return settings_section("vlm")


def language_settings() -> LanguageSettings:
    """The `language:` section (task_aug_count, max_interjections, vqa_hz, ...) over defaults."""
    section = settings_section("language")
    try:
        return LanguageSettings(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}
        )
    except TypeError as exc:
        raise ValueError(f"settings file, section language: {exc}") from None


SETTINGS = language_settings()


def served_model(config: dict[str, Any]) -> str:
    """The model id replies will carry: what the code_version of each language asset names."""
    model = config.get("model") or "stub-vlm"
    return f"{model}:local-stub" if config.get("backend", "local-stub") == "local-stub" else model


class VLMResource(dg.ConfigurableResource):
    """Settings for `build_client`; the API key only ever comes from the env var it names."""

    backend: str = "local-stub"
    model: str = ""
    base_url: str = ""
    base_urls: list[str] = []
    api_key_env: str = ""
    concurrency: int | None = None
    timeout_s: float | None = None
    budget_usd: float | None = None  # per Dagster run, across all its language assets
    budget_dir: str = ""  # where a run's budget figures are shared between its steps
    cache_dir: str = ""
    latency_s: float | None = None

    def client(self, run_id: str) -> VLMClient:
        settings = {
            k: v
            for k, v in self.model_dump().items()
            if k not in ("budget_usd", "budget_dir") and v not in ("", [], None)
        }
        budget = None
        if self.budget_usd is not None:
            price = price_for(served_model(settings), load_prices())
            state = Path(self.budget_dir) / f"{run_id}.json" if self.budget_dir else None
            budget = Budget(self.budget_usd, price, state)
        from enrich_assets.models.vlm.factory import build_client

        return build_client(settings, budget=budget)

    @contextmanager
    def session(self, run_id: str) -> Iterator[VLMClient]:
        """One client for an asset step (all its partitions); a local stub stops after."""
        client = self.client(run_id)
        try:
            yield client
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
