"""VLM backend for any OpenAI-compatible endpoint (OpenAI, Gemini's compatible API, vLLM).

The real `openai` client with its own retries off: this module owns retrying (exponential
backoff with jitter, honouring Retry-After) on 429, 5xx, timeouts, connection errors and HTTP
200 answers that are not a chat completion (empty `choices`, no `message`, an HTML or non-JSON
body; past the retries the item is quarantined with the reason), and rotates round-robin over
several base URLs, one attempt each. Whatever a server says is redacted before it is kept.
"""

from __future__ import annotations

import base64
import email.utils
import io
import itertools
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from enrich_assets.infra.redact import redact, register_secret
from enrich_assets.models.vlm.call import (
    Generation,
    InvalidCompletion,
    Message,
    RepairingClient,
)
from enrich_assets.models.vlm.stub_server import KIND_HEADER, LocalStubServer
from enrich_assets.models.vlm.types import VLMRequest

log = logging.getLogger(__name__)


class VLMUnavailable(RuntimeError):
    """The endpoint kept failing past the retry limit: the run fails, items are not blamed."""


class VLMCallRejected(RuntimeError):
    """A non-retryable HTTP error (bad key, unknown model, malformed request)."""


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 1.0
    max_s: float = 60.0
    jitter: float = 0.2  # ±20 %
    max_attempts: int = 8  # per model call, across all base URLs

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_s < 0 or not 0 <= self.jitter < 1:
            raise ValueError(f"invalid retry policy {self}")

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before retry number `retry` (0-based); the server's Retry-After wins."""
        if retry_after is not None:
            return retry_after
        base = min(self.max_s, self.initial_s * 2**retry)
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter)


class OpenAIVLMClient(RepairingClient):
    def __init__(
        self,
        model: str,
        base_urls: Sequence[str],
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        concurrency: int = 16,
        retry: RetryPolicy = RetryPolicy(),
        json_mode: bool = True,
        image_format: str = "png",
        owned_server: LocalStubServer | None = None,
        **options: Any,
    ) -> None:
        """`options`: RepairingClient's (max_repairs, temperature, max_tokens, cache, budget).

        `owned_server`: a local stub this client started and stops on `close()`.
        """
        import openai

        if not base_urls:
            raise ValueError("OpenAIVLMClient needs at least one base URL")
        if image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format must be png or jpeg, got {image_format!r}")
        register_secret(api_key)
        super().__init__(model, concurrency=concurrency, **options)
        self.base_urls = list(base_urls)
        self.retry = retry
        self.json_mode = json_mode
        self.image_format = image_format
        self._owned_server = owned_server
        self._clients = [
            openai.OpenAI(
                base_url=url, api_key=api_key or "no-key", max_retries=0, timeout=timeout_s
            )
            for url in self.base_urls
        ]
        self._next_client = itertools.cycle(list(zip(self.base_urls, self._clients, strict=True)))
        self._lock = threading.Lock()
        self._rng = random.Random()

    def __repr__(self) -> str:
        return (
            f"OpenAIVLMClient(model={self.model!r}, base_urls={self.base_urls!r}, "
            f"concurrency={self.concurrency})"
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()
        if self._owned_server:
            self._owned_server.stop()

    def _generate(self, request: VLMRequest, messages: list[Message]) -> Generation:
        import openai

        params: dict[str, Any] = {
            "model": self.model,
            "messages": [self._wire_message(m) for m in messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "extra_headers": {KIND_HEADER: request.kind},
        }
        if request.json_output and self.json_mode:
            params["response_format"] = {"type": "json_object"}
        invalid = False
        for attempt in range(self.retry.max_attempts):
            with self._lock:
                url, client = next(self._next_client)
            invalid = False
            try:
                return _generation(client.chat.completions.create(**params))
            except (openai.RateLimitError, openai.InternalServerError) as e:
                problem, retry_after = f"HTTP {e.status_code}", retry_after_s(e.response.headers)
            except openai.APIConnectionError as e:  # includes timeouts
                problem, retry_after = type(e).__name__, None
            except openai.APIStatusError as e:
                raise VLMCallRejected(
                    redact(
                        f"{url} rejected the {request.kind!r} request: "
                        f"HTTP {e.status_code} {e.message}"
                    )
                ) from None
            except (InvalidCompletion, openai.APIResponseValidationError, ValueError) as e:
                invalid, retry_after = True, None
                problem = redact(f"HTTP 200 that is not a chat completion: {e}")[:300]
            if attempt + 1 == self.retry.max_attempts:
                break
            delay = self.retry.delay(attempt, retry_after, self._rng)
            log.warning(
                "VLM %s call to %s failed (%s); retry %d in %.2fs",
                request.kind,
                url,
                problem,
                attempt + 1,
                delay,
            )
            time.sleep(delay)
        if invalid:
            raise InvalidCompletion(
                f"{self.retry.max_attempts} attempts for a {request.kind!r} request; "
                f"last: {problem}"
            )
        raise VLMUnavailable(
            f"VLM endpoint(s) {self.base_urls} failed {self.retry.max_attempts} times for a "
            f"{request.kind!r} request; last: {problem}"
        )

    def _wire_message(self, message: Message) -> dict[str, Any]:
        parts = message["content"]
        if all(p["type"] == "text" for p in parts):
            return {"role": message["role"], "content": "\n".join(p["text"] for p in parts)}
        wire = [
            p
            if p["type"] == "text"
            else {
                "type": "image_url",
                "image_url": {"url": image_data_url(p["image"], self.image_format)},
            }
            for p in parts
        ]
        return {"role": message["role"], "content": wire}


def image_data_url(image: np.ndarray, image_format: str = "png") -> str:
    from PIL import Image

    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    else:
        Image.fromarray(image).save(buffer, format="PNG")
    return f"data:image/{image_format};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def _generation(response: Any) -> Generation:
    """The completion's text and usage; InvalidCompletion when it is not one."""
    if isinstance(response, str | bytes) or not hasattr(response, "choices"):
        raise InvalidCompletion(f"body is not a completion: {str(response)[:120]!r}")
    if not response.choices:
        raise InvalidCompletion("no choices")
    choice = response.choices[0]
    message = getattr(choice, "message", None)
    if message is None or not isinstance(getattr(message, "content", None), str | None):
        raise InvalidCompletion("the first choice has no message")
    usage = response.usage
    return Generation(
        text=message.content or "",
        input_tokens=usage.prompt_tokens if usage else 0,
        output_tokens=usage.completion_tokens if usage else 0,
        finish_reason=choice.finish_reason,
        refusal=getattr(message, "refusal", None),
        served_model=response.model,
    )


def retry_after_s(headers: Any) -> float | None:
    """Seconds from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    if ms := headers.get("retry-after-ms"):
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
