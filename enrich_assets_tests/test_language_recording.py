"""What the language assets account for each episode's VLM calls, without Dagster: the
recording client and the ledger rows built from what it recorded."""

from __future__ import annotations

import pytest

from enrich_assets.models.vlm.ledger import BudgetExceeded, ledger_rows, load_prices
from enrich_assets.models.vlm.recording import RecordingClient
from enrich_assets.models.vlm.types import VLMReply, VLMRequest


class CountingVLM:
    """Answers `limit` requests, then refuses like a spent budget."""

    model = "gpt-4o-mini"

    def __init__(self, limit: int, concurrency: int = 1) -> None:
        self.limit = limit
        self.concurrency = concurrency
        self.seen = 0

    def complete(self, request: VLMRequest) -> VLMReply:
        self.seen += 1
        if self.seen > self.limit:
            raise BudgetExceeded("spent")
        return VLMReply(self.model, "ok", input_tokens=1000, output_tokens=100)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_recording_keeps_each_call_in_order_as_it_lands(concurrency):
    client = RecordingClient(CountingVLM(limit=10, concurrency=concurrency))
    requests = [VLMRequest(kind="vqa", prompt=str(i)) for i in range(6)]
    replies = client.complete_many(requests)
    assert [r.text for r in replies] == ["ok"] * 6 and client.model == "gpt-4o-mini"
    assert sorted(q.prompt for q, _ in client.calls) == [str(i) for i in range(6)]
    assert client.complete(VLMRequest(kind="caption", prompt="x")).text == "ok"
    assert len(client.calls) == 7


def test_calls_made_before_a_stop_are_recorded():
    """The two answered calls, and the one the budget refused (a ledger row, cost 0)."""
    client = RecordingClient(CountingVLM(limit=2))
    with pytest.raises(BudgetExceeded):
        client.complete_many([VLMRequest(kind="vqa", prompt=str(i)) for i in range(5)])
    assert [q.prompt for q, _ in client.calls] == ["0", "1", "2"]
    assert [a.failed for _, a in client.calls] == [None, None, "BudgetExceeded"]


def test_ledger_rows_carry_the_episode_provenance():
    calls = [
        (VLMRequest(kind="vqa", prompt="q"), VLMReply("gpt-4o-mini", "a", None, 1000, 100)),
        (VLMRequest(kind="plan_segment", prompt="q"), VLMReply("gpt-4o-mini", "", error="bad")),
    ]
    entries, rows = ledger_rows(
        calls,
        run_id="r1",
        asset="language_vqa",
        dataset_id="d",
        episode_index=7,
        code_version="abc",
        prices=load_prices(),
    )
    assert [e.status for e in entries] == ["ok", "quarantined"]
    assert entries[0].partition == "d:ep000007" and entries[0].cost_usd > 0
    assert [r["kind"] for r in rows] == ["vqa", "plan_segment"]
    assert {(r["dataset_id"], r["episode_index"], r["code_version"]) for r in rows} == {
        ("d", 7, "abc")
    }
    assert rows[0]["created_at"] is not None and rows[0]["run_id"] == "r1"
    assert ledger_rows(
        [], run_id="r", asset="a", dataset_id="d", episode_index=0, code_version="", prices={}
    ) == ([], [])
