"""One VLM request from a prompt file: what every language module sends."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.infra.prompts import load_prompt
from enrich_assets.models.vlm.types import VLMRequest


def prompt_request(
    kind: str,
    images: Sequence[np.ndarray],
    settings: LanguageSettings,
    *,
    json_output: bool = True,
    **fields: object,
) -> VLMRequest:
    """The prompt file `kind` rendered with `fields`, its system part, `images`, and the
    module settings' sampling (`max_tokens`, `temperature`)."""
    prompt = load_prompt(kind)
    return VLMRequest(
        kind=kind,
        prompt=prompt.render(**fields),
        images=tuple(images),
        system=prompt.system,
        json_output=json_output,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
    )
