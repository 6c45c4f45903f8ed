"""Post a JSON message to a webhook (Slack-compatible incoming webhooks take {"text": ...}).

The URL may carry a secret (a Slack webhook's path is its token): it is registered with
`infra.redact` before use, and errors name the failure, never the URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from enrich_assets.infra.redact import redact, register_secret


class WebhookError(RuntimeError):
    """The webhook refused the message or could not be reached (one line, no URL)."""


def post_json(url: str, payload: dict[str, Any], timeout_s: float = 10.0) -> int:
    """POST `payload` as JSON; the HTTP status on 2xx, else WebhookError."""
    register_secret(url)
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"webhook answered HTTP {exc.code} {redact(exc.reason)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebhookError(f"webhook not reachable: {redact(str(reason))}") from None
