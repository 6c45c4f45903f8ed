"""The VLM settings of a run: the `vlm:` and `language:` sections of the settings file (read
and checked by enrich_assets/infra/settings.py), and the resource that builds one client per
asset step from them."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg

from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.infra.settings import Settings, load_settings
from enrich_assets.models.vlm.ledger import Budget, load_prices, priced
from enrich_assets.models.vlm.types import VLMClient


def settings_section(name: str) -> dict[str, Any]:
    """The keys set in one VLM section of the settings file (`vlm`, `vlm_secondary`), checked."""
    section = getattr(load_settings(), name)
    return section.as_config() if section is not None else {}


def vlm_config() -> dict[str, Any]:
    return settings_section("vlm")


def language_settings(settings: Settings | None = None) -> LanguageSettings:
    """The `language:` section over LanguageSettings' defaults, with the `vlm:` sampling
    overrides applied (temperature replaces, max_tokens caps), so that the requests built and
    the code versions hashed say what the client will send."""
    settings = settings or load_settings()
    language = LanguageSettings(**settings.language.overrides())
    vlm = settings.vlm
    if vlm.temperature is not None:
        language = replace(language, temperature=vlm.temperature)
    if vlm.max_tokens is not None:
        language = replace(language, max_tokens=min(language.max_tokens, vlm.max_tokens))
    return language


SETTINGS = language_settings()


def served_model(config: dict[str, Any]) -> str:
    """The model id replies will carry: what the code_version of each language asset names."""
    model = config.get("model") or "stub-vlm"
    return f"{model}:local-stub" if config.get("backend", "local-stub") == "local-stub" else model


class RetryConfig(dg.Config):
    initial_s: float | None = None
    max_s: float | None = None
    jitter: float | None = None
    max_attempts: int | None = None


class VLMResource(dg.ConfigurableResource):
    """Settings for `build_client` (the `vlm:` keys); the API key only ever comes from the env
    var it names. Unset (None / empty) keys take the client's defaults."""

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
    temperature: float | None = None
    max_tokens: int | None = None
    max_repairs: int | None = None
    json_mode: bool | None = None
    image_format: str | None = None
    retry: RetryConfig | None = None
    device: str | None = None
    dtype: str | None = None
    random_init: bool | None = None
    min_new_tokens: int | None = None

    def settings(self) -> dict[str, Any]:
        """What build_client takes: the keys set, the budget's own left out."""
        values = self.model_dump()
        retry = {k: v for k, v in (values.pop("retry") or {}).items() if v is not None}
        settings = {
            k: v
            for k, v in values.items()
            if k not in ("budget_usd", "budget_dir") and v not in ("", [], None)
        }
        if retry:
            settings["retry"] = retry
        return settings

    def client(self, run_id: str) -> VLMClient:
        settings = self.settings()
        price = priced(served_model(settings), load_prices(), budget_usd=self.budget_usd)
        budget = None
        if self.budget_usd is not None:
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
