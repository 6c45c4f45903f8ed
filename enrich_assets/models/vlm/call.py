"""One request's life, the same for every backend: cache, budget, generate, parse, repair.

A backend supplies only `generate(messages) -> Generation`; everything that decides whether
an answer is usable, what it cost and when to stop lives here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from enrich_assets.infra.redact import redact
from enrich_assets.models.vlm.cache import ResponseCache, cache_key
from enrich_assets.models.vlm.json_output import (
    MalformedOutput,
    check_text,
    parse_json,
    repair_prompt,
)
from enrich_assets.models.vlm.ledger import Budget, estimate_tokens
from enrich_assets.models.vlm.types import VLMReply, VLMRequest

LOCAL_STUB_SUFFIX = ":local-stub"

# A chat message: {"role": ..., "content": [{"type": "text", "text": str} |
#                                           {"type": "image", "image": np.ndarray}]}
Message = dict[str, Any]


@dataclass(frozen=True)
class Generation:
    """What one model call returned."""

    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str | None = None
    refusal: str | None = None
    served_model: str | None = None


Generate = Callable[[list[Message]], Generation]


class InvalidCompletion(Exception):
    """The endpoint answered (HTTP 200) with something that is not a chat completion, past
    its retries: the item is quarantined with this reason, the run goes on."""


def apply_overrides(
    request: VLMRequest, temperature: float | None, max_tokens: int | None
) -> VLMRequest:
    """The request as a client configured with `temperature` (replaces every request's) and
    `max_tokens` (caps every request's) sends it."""
    return replace(
        request,
        temperature=request.temperature if temperature is None else temperature,
        max_tokens=min(request.max_tokens, max_tokens or request.max_tokens),
    )


def failed_reply(model: str, exc: BaseException, **fields: Any) -> VLMReply:
    """What the ledger records of a call that raised: no answer, the reason, redacted."""
    return VLMReply(
        model=model,
        text="",
        error=f"{type(exc).__name__}: {redact(str(exc))}",
        failed=type(exc).__name__,
        **fields,
    )


def request_messages(request: VLMRequest) -> list[Message]:
    for i, image in enumerate(request.images):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"VLM request {request.kind!r}: image {i} must be uint8 HxWx3 RGB, "
                f"got {image.dtype} {image.shape}"
            )
    messages: list[Message] = []
    if request.system:
        messages.append({"role": "system", "content": [_text(request.system)]})
    parts = [{"type": "image", "image": im} for im in request.images]
    messages.append({"role": "user", "content": [*parts, _text(request.prompt)]})
    return messages


def complete_with_repairs(
    request: VLMRequest,
    generate: Generate,
    *,
    model: str,
    max_repairs: int,
    cache: ResponseCache | None = None,
    budget: Budget | None = None,
) -> VLMReply:
    """A parsed reply, or one with `error` set after `max_repairs` failed repair prompts
    (long: one request's whole life, cache to budget to repairs, read top to bottom).

    Raises only what the run cannot recover from item by item: BudgetExceeded, bad input,
    and the backend's own errors (e.g. a server that stays unreachable); the exception then
    carries `vlm_reply`, the failed call as the ledger records it (tokens spent so far).
    An endpoint that keeps answering with no completion (InvalidCompletion) quarantines.
    """
    key = cache_key(model, request) if cache else ""
    if cache and (hit := cache.get(key)) is not None:
        return hit
    messages = request_messages(request)
    started = time.perf_counter()
    input_tokens = output_tokens = 0
    reasons: list[str] = []

    def reply(gen: Generation, attempts: int, **fields: Any) -> VLMReply:
        return VLMReply(
            model=_reply_model(model, gen.served_model),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_s=time.perf_counter() - started,
            attempts=attempts,
            meta={"served_model": gen.served_model, "finish_reason": gen.finish_reason},
            **fields,
        )

    for attempt in range(1, max_repairs + 2):
        try:
            gen = _generate_within(budget, generate, messages, request.max_tokens)
        except InvalidCompletion as e:
            reason = f"invalid completion: {redact(str(e))}"
            return reply(Generation("", 0, 0), attempt, text="", error=reason)
        except Exception as e:
            e.vlm_reply = failed_reply(  # type: ignore[attr-defined]
                model,
                e,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                latency_s=time.perf_counter() - started,
                attempts=attempt,
            )
            raise
        input_tokens += gen.input_tokens
        output_tokens += gen.output_tokens
        try:
            text, parsed = _checked(request, gen)
        except MalformedOutput as e:
            reasons.append(e.reason)
            messages = _with_repair_prompt(messages, gen, e, request.json_output)
            continue
        good = reply(gen, attempt, text=text, parsed=parsed)
        if cache and good.model == model:  # a stub standing in for `model` never fills its cache
            cache.put(key, good)
        return good
    return reply(
        gen,
        max_repairs + 1,
        text=gen.text,
        error=f"malformed output after {max_repairs + 1} attempts: {', '.join(reasons)}",
    )


def _checked(request: VLMRequest, gen: Generation) -> tuple[str, Any]:
    """The answer's text and its parsed JSON (None for free text), or MalformedOutput."""
    truncated = gen.finish_reason == "length"
    if request.json_output:
        return gen.text, parse_json(gen.text, truncated=truncated, refusal=gen.refusal)
    return check_text(gen.text, truncated=truncated, refusal=gen.refusal), None


def _with_repair_prompt(
    messages: list[Message], gen: Generation, error: MalformedOutput, json_output: bool
) -> list[Message]:
    """The conversation so far, the bad answer, and a prompt asking to fix it."""
    return [
        *messages,
        {"role": "assistant", "content": [_text(gen.text or error.detail)]},
        {"role": "user", "content": [_text(repair_prompt(error, json_output))]},
    ]


def complete_concurrently(
    complete: Callable[[VLMRequest], VLMReply],
    requests: list[VLMRequest],
    concurrency: int,
    on_reply: Callable[[VLMRequest, VLMReply], None] | None = None,
) -> list[VLMReply]:
    """At most `concurrency` in flight, replies in input order; the first fatal error stops
    the rest. `on_reply` sees each reply as it lands, so calls made before a stop (a budget
    reached, a server gone) are still accounted for."""

    def one(request: VLMRequest) -> VLMReply:
        try:
            reply = complete(request)
        except Exception as e:  # the call raised: recorded as failed, then the run decides
            if on_reply is not None:
                model = getattr(getattr(complete, "__self__", None), "model", "") or ""
                on_reply(request, getattr(e, "vlm_reply", None) or failed_reply(model, e))
            raise
        if on_reply is not None:
            on_reply(request, reply)
        return reply

    if concurrency <= 1 or len(requests) <= 1:
        return [one(r) for r in requests]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(requests))) as pool:
        futures = [pool.submit(one, r) for r in requests]
        try:
            return [f.result() for f in futures]
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


class RepairingClient:
    """The request life every backend shares, around the backend's own `_generate`.

    `complete` applies the client's overrides (`temperature` replaces every request's,
    `max_tokens` caps every request's) and runs `complete_with_repairs` with the client's
    cache and budget; `complete_many` keeps at most `concurrency` requests in flight.
    A backend passes these options through (`**options`) and supplies `_generate`.
    """

    def __init__(
        self,
        model: str,
        *,
        max_repairs: int = 2,
        temperature: float | None = None,
        max_tokens: int | None = None,
        cache: ResponseCache | None = None,
        budget: Budget | None = None,
        concurrency: int = 1,
    ) -> None:
        self.model = model
        self.concurrency = concurrency
        self.max_repairs = max_repairs
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.cache = cache
        self.budget = budget

    def complete(self, request: VLMRequest) -> VLMReply:
        request = apply_overrides(request, self.temperature, self.max_tokens)
        return complete_with_repairs(
            request,
            lambda messages: self._generate(request, messages),
            model=self.model,
            max_repairs=self.max_repairs,
            cache=self.cache,
            budget=self.budget,
        )

    def complete_many(self, requests: list[VLMRequest]) -> list[VLMReply]:
        return complete_concurrently(self.complete, requests, self.concurrency)

    def _generate(self, request: VLMRequest, messages: list[Message]) -> Generation:
        """One model call for `request` (overrides applied) on the conversation so far."""
        raise NotImplementedError


def _generate_within(
    budget: Budget | None, generate: Generate, messages: list[Message], max_tokens: int
) -> Generation:
    """One call, its worst case reserved first; a call that raised cost nothing."""
    if budget is None:
        return generate(messages)
    reserved = budget.reserve(_estimate_tokens(messages), max_tokens)
    try:
        gen = generate(messages)
    except BaseException:
        budget.settle(reserved, 0, 0)
        raise
    budget.settle(reserved, gen.input_tokens, gen.output_tokens)
    return gen


def _text(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _estimate_tokens(messages: list[Message]) -> int:
    parts = [p for m in messages for p in m["content"]]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    return estimate_tokens(texts, len(parts) - len(texts))


def _reply_model(model: str, served: str | None) -> str:
    """The configured model id, unless a stub served it: a stub answer never passes as real."""
    if served and served.endswith(LOCAL_STUB_SUFFIX) and not model.endswith(LOCAL_STUB_SUFFIX):
        return served
    return model
