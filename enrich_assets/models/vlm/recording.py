"""A client wrapper that remembers every call, so each one can become a ledger row."""

from __future__ import annotations

import threading

from enrich_assets.models.vlm.call import complete_concurrently
from enrich_assets.models.vlm.types import VLMClient, VLMReply, VLMRequest


class RecordingClient:
    """Passes requests to the run's client and keeps (request, reply) pairs for the ledger,
    each as it lands: calls made before the budget stopped an episode are recorded too."""

    def __init__(self, client: VLMClient) -> None:
        self.client = client
        self.model = client.model
        self.calls: list[tuple[VLMRequest, VLMReply]] = []
        self._lock = threading.Lock()

    def complete(self, request: VLMRequest) -> VLMReply:
        return self.complete_many([request])[0]

    def complete_many(self, requests: list[VLMRequest]) -> list[VLMReply]:
        concurrency = getattr(self.client, "concurrency", 1)
        return complete_concurrently(self.client.complete, requests, concurrency, self._record)

    def _record(self, request: VLMRequest, reply: VLMReply) -> None:
        with self._lock:
            self.calls.append((request, reply))
