"""An exception as one line: what a user reads on the console, in status and in the catalog."""

from __future__ import annotations

from enrich_assets.infra.redact import redact


def one_line(exc: BaseException, limit: int = 300) -> str:
    """`Type: first line of the message`, cut at `limit`, with secrets masked."""
    text = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {text[0][:limit] if text else ''}") or ""
