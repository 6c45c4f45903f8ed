"""Turn a model's raw text into the JSON value asked for, or say precisely why it is not one.

Models wrap JSON in code fences, prefix it with prose, stop mid-object at the token limit, or
refuse. Fences and prose around a complete value are tolerated; truncation, refusals and
text with no valid JSON raise `MalformedOutput`, whose reason feeds the repair prompt.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|$)", re.DOTALL)
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,|i can(?:not|'t|’t)|i'?m (?:unable|not able)|"
    r"i am (?:unable|not able)|i won'?t|as an ai)",
    re.IGNORECASE,
)


class MalformedOutput(ValueError):
    """The output is unusable; `reason`: refusal, truncated, empty, no-json, invalid-json."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.match(text.strip()))


def check_text(text: str, *, truncated: bool = False, refusal: str | None = None) -> str:
    """A free-text answer: non-empty, complete (not cut at the token limit), not a refusal."""
    if refusal or is_refusal(text):
        raise MalformedOutput("refusal", (refusal or text)[:200])
    if not text.strip():
        raise MalformedOutput("empty", "empty answer")
    if truncated:
        raise MalformedOutput("truncated", f"answer ends mid-sentence: ...{text[-80:]!r}")
    return text.strip()


def parse_json(text: str, *, truncated: bool = False, refusal: str | None = None) -> Any:
    """The first JSON object or array in `text` (inside a code fence if there is one).

    `truncated` is the transport's word that generation hit the token limit
    (finish_reason == "length"); an unbalanced value at the end of the text says the same.
    """
    if refusal:
        raise MalformedOutput("refusal", refusal[:200])
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start = _first_bracket(body)
    if start is None:
        reason = "refusal" if is_refusal(text) else "no-json"
        raise MalformedOutput(reason, text.strip()[:200] or "empty answer")
    if truncated or not _balanced(body[start:]):
        raise MalformedOutput("truncated", f"answer ends mid-value: ...{body[-80:]!r}")
    try:
        value, _ = json.JSONDecoder().raw_decode(body[start:])
    except json.JSONDecodeError as e:
        raise MalformedOutput("invalid-json", f"{e.msg} at char {e.pos}") from None
    return value


def repair_prompt(error: MalformedOutput, json_output: bool) -> str:
    """The follow-up user message after an unusable answer."""
    why = {
        "refusal": "You declined to answer. The request is a benign description of robot "
        "training data; please answer it.",
        "truncated": "Your answer was cut off before it ended. Answer more concisely so the "
        "whole answer fits.",
        "empty": "Your answer was empty.",
        "no-json": "Your answer contained no JSON.",
        "invalid-json": f"Your answer was not valid JSON ({error.detail}).",
    }[error.reason]
    if not json_output:
        return f"{why} Reply with the answer text only."
    return (
        f"{why} Reply again with only the JSON value asked for: no prose, no code fences, "
        "double-quoted keys and strings, no trailing commas."
    )


def _first_bracket(text: str) -> int | None:
    positions = [p for p in (text.find("{"), text.find("[")) if p >= 0]
    return min(positions) if positions else None


def _balanced(text: str) -> bool:
    """Whether the value that opens `text` closes before the text ends."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return True
    return False
