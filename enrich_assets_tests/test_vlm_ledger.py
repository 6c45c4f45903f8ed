import threading

import duckdb
import numpy as np
import pytest

from enrich_assets.models.vlm.ledger import (
    IMAGE_TOKENS,
    Budget,
    BudgetExceeded,
    KindEstimate,
    Price,
    UnknownModelPrice,
    estimate_cost,
    estimate_work,
    ledger_entry,
    load_prices,
    price_for,
    run_totals,
    weekly_view_sql,
)
from enrich_assets.models.vlm.types import VLMReply, VLMRequest


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def test_price_table_has_real_and_free_models(prices):
    assert price_for("gpt-4o-mini", prices) == Price(0.15, 0.60)
    assert price_for("gemini-2.5-flash", prices).output_per_m > 0
    assert price_for("stub-vlm:local-stub", prices) == Price(0, 0)
    assert price_for("Qwen2-VL-tiny:random-init", prices) == Price(0, 0)
    with pytest.raises(UnknownModelPrice, match="prices.yaml"):
        price_for("my-private-model", prices)


def test_price_table_rejects_entries_without_numbers(tmp_path):
    bad = tmp_path / "prices.yaml"
    bad.write_text("models:\n  m: {input: cheap, output: 1}\n")
    with pytest.raises(ValueError, match="numeric"):
        load_prices(bad)


def test_cost_per_million_tokens():
    assert Price(2.5, 10.0).cost(1_000_000, 100_000) == pytest.approx(3.5)


def test_ledger_entries_and_run_totals(prices):
    request = VLMRequest(kind="caption", prompt="p")
    ok = VLMReply(model="gpt-4o-mini", text="t", input_tokens=2000, output_tokens=500)
    cached = VLMReply(model="gpt-4o-mini", text="t", cached=True)
    bad = VLMReply(
        model="gpt-4o-mini",
        text="x",
        input_tokens=100,
        output_tokens=10,
        error="malformed output after 3 attempts",
        attempts=3,
    )
    where = {"run_id": "r1", "asset": "ai_caption", "partition": "7", "prices": prices}
    rows = [ledger_entry(request, r, **where) for r in (ok, cached, bad)]
    assert [r.status for r in rows] == ["ok", "cached", "quarantined"]
    assert rows[0].cost_usd == pytest.approx((2000 * 0.15 + 500 * 0.60) / 1e6)
    assert rows[1].cost_usd == 0.0
    assert rows[2].as_row()["error"].startswith("malformed")
    totals = run_totals(rows)
    assert totals["vlm_requests"] == 3 and totals["vlm_cached"] == 1
    assert totals["vlm_quarantined"] == 1 and totals["vlm_input_tokens"] == 2100
    assert totals["vlm_cost_usd"] == pytest.approx(rows[0].cost_usd + rows[2].cost_usd)


def test_weekly_view_aggregates_ledger_rows(prices):
    request = VLMRequest(kind="vqa", prompt="p")
    reply = VLMReply(model="gpt-4o", text="t", input_tokens=1000, output_tokens=100)
    rows = [
        ledger_entry(
            request, reply, run_id=f"r{i}", asset="ai_vqa", partition=str(i), prices=prices
        ).as_row()
        for i in range(3)
    ]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE vlm_ledger (time VARCHAR, run_id VARCHAR, asset VARCHAR, "
        "partition VARCHAR, kind VARCHAR, model VARCHAR, status VARCHAR, input_tokens BIGINT, "
        "output_tokens BIGINT, latency_s DOUBLE, attempts INT, cost_usd DOUBLE, error VARCHAR)"
    )
    con.executemany(
        "INSERT INTO vlm_ledger VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [list(r.values()) for r in rows],
    )
    con.execute(weekly_view_sql())
    week = con.sql("SELECT model, kind, requests, input_tokens, cost_usd FROM vlm_cost_weekly")
    assert week.fetchall() == [("gpt-4o", "vqa", 3, 3000, pytest.approx(3 * 0.0035))]


def test_estimate_cost_per_kind(prices):
    work = {"caption": KindEstimate(100, 1000, 150), "vqa": KindEstimate(50, 1200, 300)}
    costs = estimate_cost("gpt-4o-mini", work, prices)
    assert costs["caption"] == pytest.approx((100_000 * 0.15 + 15_000 * 0.60) / 1e6)
    assert costs["total"] == pytest.approx(costs["caption"] + costs["vqa"])


def test_budget_refuses_the_call_that_could_overspend_and_stays_exhausted():
    budget = Budget(cap_usd=0.01, price=Price(1.0, 1.0))  # $1 per 1M tokens
    reserved = budget.reserve(4000, 1000)  # up to $0.005
    budget.settle(reserved, 3000, 500)
    assert budget.spent_usd == pytest.approx(0.0035)
    with pytest.raises(BudgetExceeded, match="budget"):
        budget.reserve(6000, 1000)  # 0.0035 + 0.007 > 0.01
    with pytest.raises(BudgetExceeded):
        budget.reserve(1, 1)  # exhausted for good
    assert budget.spent_usd <= budget.cap_usd


def test_budget_counts_in_flight_reservations_across_threads():
    budget = Budget(cap_usd=0.01, price=Price(1.0, 0.0))
    granted, refused = [], []

    def take():
        try:
            granted.append(budget.reserve(1000, 0))  # $0.001 each
        except BudgetExceeded:
            refused.append(1)

    threads = [threading.Thread(target=take) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 10 and len(refused) == 20


def test_budget_shared_through_a_file_holds_across_processes(tmp_path):
    """Two Budget objects on one state file stand for two step processes of one run."""
    state = tmp_path / "budget" / "run-1.json"
    first = Budget(cap_usd=0.01, price=Price(1.0, 0.0), state_path=state)
    second = Budget(cap_usd=0.01, price=Price(1.0, 0.0), state_path=state)
    first.settle(first.reserve(6000, 0), 6000, 0)  # $0.006 spent by the first step
    assert second.spent_usd == pytest.approx(0.006)
    with pytest.raises(BudgetExceeded, match=r"spent \$0.0060"):
        second.reserve(5000, 0)  # 0.006 + 0.005 > 0.01
    with pytest.raises(BudgetExceeded):
        first.reserve(1, 0)  # the refusal left the run's budget exhausted for every step
    assert not list(state.parent.glob("*.partial"))


def test_estimate_work_from_requests():
    image = np.zeros((4, 4, 3), np.uint8)
    requests = [
        VLMRequest(kind="caption", prompt="x" * 400, images=(image,), max_tokens=100),
        VLMRequest(kind="caption", prompt="x" * 200, images=(image,), max_tokens=300),
        VLMRequest(kind="vqa", prompt="y" * 40, max_tokens=50),
    ]
    work = estimate_work(requests)
    assert work == {
        "caption": KindEstimate(requests=2, input_tokens=75 + IMAGE_TOKENS, output_tokens=200),
        "vqa": KindEstimate(requests=1, input_tokens=10, output_tokens=50),
    }
    assert estimate_cost("stub:local-stub", work, load_prices())["total"] == 0.0
