"""The one interface every VLM backend speaks (OpenAI-compatible HTTP, in-process transformers).

Language modules and captioning depend on this protocol only, never on a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class VLMRequest:
    """One call: a system + user prompt, optional images (uint8 HxWx3 RGB), JSON wanted or not.

    `kind` names the prompt family (caption, plan_describe, plan_segment, vqa, ...) for the
    ledger and for the local stub server's scripted answers.
    """

    kind: str
    prompt: str
    images: tuple[np.ndarray, ...] = ()
    system: str = ""
    json_output: bool = True
    max_tokens: int = 512
    temperature: float = 0.0


@dataclass(frozen=True)
class VLMReply:
    """A parsed answer, or a quarantine reason when the output never became valid."""

    model: str  # e.g. "gpt-4o-mini", "Qwen/Qwen2.5-VL-3B:random-init", "...:local-stub"
    text: str
    parsed: Any = None  # the JSON value when json_output, else None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    error: str | None = None  # set when the item is quarantined (malformed after repairs)
    attempts: int = 1
    failed: str | None = None  # the exception's class name when the call raised (no answer)
    meta: dict[str, Any] = field(default_factory=dict)


class VLMClient(Protocol):
    model: str

    def complete(self, request: VLMRequest) -> VLMReply: ...

    def complete_many(self, requests: list[VLMRequest]) -> list[VLMReply]:
        """Run requests concurrently (bounded); results in input order."""
        ...
