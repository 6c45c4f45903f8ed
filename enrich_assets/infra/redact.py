"""Secrets out of every text that is stored or printed: one function, `redact`.

It removes the values registered with `register_secret` (the VLM factory registers the API
key it read from the env var named by `api_key_env`) and anything shaped like a credential:
`Bearer <token>` and `sk-…` keys. Apply it wherever a server's or an exception's words are
kept: reply errors, raised messages, log lines, ledger rows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MASK = "[redacted]"
_MIN_SECRET = 4  # shorter values would blank ordinary words
_PATTERNS = (
    re.compile(r"(?i)\bBearer\s+[^\s\"',;]+"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
)
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret of this process so that `redact` removes it from then on."""
    if value and len(value) >= _MIN_SECRET:
        with _lock:
            _secrets.add(value)


def redact(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """`text` with every registered (and given) secret and credential-shaped token masked."""
    if not text:
        return text
    with _lock:
        known = sorted({*_secrets, *(s for s in secrets if s and len(s) >= _MIN_SECRET)}, key=len)
    for secret in reversed(known):  # longest first: a key containing another is masked whole
        text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text
