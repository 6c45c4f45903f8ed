"""The OpenAI-compatible backend against the local stub: real HTTP, the real openai client."""

import email.utils
import logging
import random
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from enrich_assets.models.vlm.cache import ResponseCache
from enrich_assets.models.vlm.ledger import Budget, BudgetExceeded, Price
from enrich_assets.models.vlm.openai_client import (
    OpenAIVLMClient,
    RetryPolicy,
    VLMCallRejected,
    VLMUnavailable,
    retry_after_s,
)
from enrich_assets.models.vlm.stub_server import Fault, LocalStubServer
from enrich_assets.models.vlm.types import VLMRequest

FAST = RetryPolicy(initial_s=0.01, max_s=0.05, max_attempts=4)
TASK = VLMRequest(kind="task_aug", prompt="Task: open the drawer\nCount: 2")


@pytest.fixture
def stub():
    with LocalStubServer() as server:
        yield server


def _client(stub, **kwargs):
    kwargs.setdefault("retry", FAST)
    return OpenAIVLMClient(stub.model, [stub.base_url], **kwargs)


def test_backoff_doubles_with_jitter_up_to_the_cap():
    policy, rng = RetryPolicy(), random.Random(0)
    for retry, base in [(0, 1), (1, 2), (3, 8), (6, 60), (20, 60)]:
        delays = [policy.delay(retry, None, rng) for _ in range(200)]
        assert base * 0.8 <= min(delays) and max(delays) <= base * 1.2
        assert max(delays) - min(delays) > base * 0.2  # jitter really varies
    assert policy.delay(2, 7.5, rng) == 7.5


def test_429_with_retry_after_is_honoured(stub):
    stub.faults.push(Fault("429", retry_after=0.4))
    started = time.perf_counter()
    reply = _client(stub).complete(TASK)
    assert time.perf_counter() - started >= 0.4
    assert reply.error is None and len(reply.parsed["rephrasings"]) == 2
    assert stub.request_count == 2


def test_429_without_retry_after_uses_backoff(stub):
    stub.faults.push(Fault("429"), Fault("429"))
    started = time.perf_counter()
    reply = _client(stub).complete(TASK)
    assert time.perf_counter() - started < 0.3
    assert reply.error is None and stub.request_count == 3


def test_500_is_retried(stub):
    stub.faults.push(Fault("500"))
    assert _client(stub).complete(TASK).error is None
    assert stub.request_count == 2


def test_slow_response_past_the_timeout_is_retried(stub):
    stub.faults.push(Fault("delay", delay_s=1.5))
    started = time.perf_counter()
    reply = _client(stub, timeout_s=0.3).complete(TASK)
    assert reply.error is None and stub.request_count == 2
    assert 0.3 <= time.perf_counter() - started < 1.5


def test_an_endpoint_that_stays_down_fails_the_run_not_the_item(stub):
    stub.faults.push(*[Fault("500")] * 10)
    with pytest.raises(VLMUnavailable, match="HTTP 500"):
        _client(stub).complete(TASK)
    assert stub.request_count == FAST.max_attempts


def test_connection_refused_is_retried_then_reported():
    client = OpenAIVLMClient("m", ["http://127.0.0.1:9/v1"], retry=FAST)
    with pytest.raises(VLMUnavailable, match="APIConnectionError"):
        client.complete(TASK)


def test_non_retryable_error_is_raised_at_once(stub):
    with pytest.raises(VLMCallRejected, match="HTTP 400"):
        _client(stub).complete(VLMRequest(kind="no_such_kind", prompt="x"))
    assert stub.request_count == 1


@pytest.mark.parametrize(
    ("fault", "attempts"),
    [("fenced", 1), ("malformed", 2), ("truncated", 2), ("refusal", 2)],
)
def test_malformed_output_is_repaired(stub, fault, attempts):
    stub.faults.push(Fault(fault))
    reply = _client(stub).complete(TASK)
    assert reply.error is None and reply.attempts == attempts
    assert reply.parsed == {"rephrasings": ["Please open the drawer.", "Now open the drawer."]}
    if attempts == 2:  # the repair turn went out with the original conversation
        messages = stub.recent[-1]["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert "JSON" in messages[-1]["content"]
        assert reply.input_tokens > 2 * 8  # both attempts counted


def test_output_that_never_parses_is_quarantined_not_raised(stub):
    requests = [VLMRequest(kind="interjection", prompt=f"Task: wipe table {i}") for i in range(4)]
    stub.faults.push(Fault("malformed"), Fault("refusal"), Fault("truncated"))
    replies = _client(stub, max_repairs=2, concurrency=1).complete_many(requests)
    assert replies[0].error == "malformed output after 3 attempts: no-json, refusal, truncated"
    assert replies[0].parsed is None and replies[0].attempts == 3
    assert all(r.error is None and "table" in r.parsed["text"] for r in replies[1:])


def test_complete_many_keeps_order_and_runs_concurrently(stub):
    stub.latency_s = 0.2
    requests = [VLMRequest(kind="task_from_video", prompt=f"Task: task {i}") for i in range(32)]
    started = time.perf_counter()
    replies = _client(stub, concurrency=16).complete_many(requests)
    elapsed = time.perf_counter() - started
    assert [r.parsed["task"] for r in replies] == [f"task {i}" for i in range(32)]
    assert elapsed < 32 * 0.2 / 4  # serial would take 6.4 s; bound is 0.4 s


def test_cache_hit_makes_zero_http_calls(stub, tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    requests = [
        VLMRequest(kind="caption", prompt=f"Task: cube {i}", images=(image,), json_output=False)
        for i in range(5)
    ]
    first = _client(stub, cache=ResponseCache(tmp_path)).complete_many(requests)
    assert stub.request_count == 5 and not any(r.cached for r in first)
    again = _client(stub, cache=ResponseCache(tmp_path)).complete_many(requests)
    assert stub.request_count == 5
    assert all(r.cached and r.input_tokens == 0 for r in again)
    assert [r.text for r in again] == [r.text for r in first]
    changed_image = image.copy()
    changed_image[0, 0, 0] ^= 1
    changed = [
        VLMRequest(
            kind="caption", prompt="Task: cube 0", images=(changed_image,), json_output=False
        ),
        VLMRequest(
            kind="caption",
            prompt="Task: cube 0",
            images=(image,),
            json_output=False,
            temperature=0.5,
        ),
    ]
    _client(stub, cache=ResponseCache(tmp_path)).complete_many(changed)
    assert stub.request_count == 7


def test_quarantined_replies_are_not_cached(stub, tmp_path):
    stub.faults.push(*[Fault("malformed")] * 3)
    client = _client(stub, cache=ResponseCache(tmp_path), max_repairs=2)
    assert client.complete(TASK).error is not None
    assert client.complete(TASK).error is None and stub.request_count == 4


def test_budget_cap_stops_issuing_calls(stub):
    # each call reserves <= 35 tokens ($0.035 at $1000/1M) and spends ~$0.02
    budget = Budget(cap_usd=0.2, price=Price(1000.0, 1000.0))
    requests = [
        VLMRequest(kind="task_from_video", prompt=f"Task: t{i}", max_tokens=30) for i in range(20)
    ]
    with pytest.raises(BudgetExceeded, match=r"budget of \$0.2000"):
        _client(stub, budget=budget, concurrency=4).complete_many(requests)
    assert 3 <= stub.request_count < 20  # in-flight worst cases count against the cap too
    assert 0.05 < budget.spent_usd <= 0.2


def test_a_failed_call_costs_nothing_and_frees_its_reservation(stub):
    budget = Budget(cap_usd=1.0, price=Price(1000.0, 1000.0))  # one call reserves ~$0.52
    stub.faults.push(*[Fault("500")] * FAST.max_attempts)
    with pytest.raises(VLMUnavailable):
        _client(stub, budget=budget).complete(TASK)
    assert budget.spent_usd == 0.0
    assert _client(stub, budget=budget).complete(TASK).error is None
    assert 0 < budget.spent_usd < 0.1


def test_round_robin_over_base_urls_and_failover():
    with LocalStubServer() as a, LocalStubServer() as b:
        client = OpenAIVLMClient(a.model, [a.base_url, b.base_url], retry=FAST, concurrency=1)
        client.complete_many(
            [VLMRequest(kind="task_from_video", prompt=f"Task: {i}") for i in range(10)]
        )
        assert a.request_count == b.request_count == 5
        a.faults.push(Fault("500"))
        assert client.complete(TASK).error is None  # 500 on a, retried on b
        assert (a.request_count, b.request_count) == (6, 6)


def test_stub_answers_never_pass_as_a_real_model(stub, tmp_path):
    client = OpenAIVLMClient("gpt-4o", [stub.base_url], retry=FAST, cache=ResponseCache(tmp_path))
    assert client.complete(TASK).model == "gpt-4o:local-stub"
    assert not client.complete(TASK).cached  # nor enter the real model's cache
    assert stub.request_count == 2


def test_settings_override_temperature_and_cap_max_tokens(stub):
    _client(stub, temperature=0.3, max_tokens=64).complete(TASK)
    body = stub.recent[-1]
    assert body["temperature"] == 0.3 and body["max_tokens"] == 64
    assert body["response_format"] == {"type": "json_object"}


def test_bad_image_is_a_clear_error(stub):
    bad = VLMRequest(kind="caption", prompt="x", images=(np.zeros((4, 4), np.float32),))
    with pytest.raises(ValueError, match="'caption': image 0 must be uint8 HxWx3"):
        _client(stub).complete(bad)


def test_api_key_never_in_logs_or_repr(stub, caplog):
    secret = "sk-test-DO-NOT-LEAK-1234567890"
    caplog.set_level(logging.DEBUG)
    stub.faults.push(Fault("429"), Fault("malformed"))
    client = _client(stub, api_key=secret)
    assert client.complete(TASK).error is None
    assert "retry 1" in caplog.text  # the retry really was logged
    assert secret not in caplog.text
    assert secret not in repr(client) and secret not in str(vars(client))


def test_retry_after_header_forms():
    now = datetime.now(UTC)
    http_date = email.utils.format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "1500", "retry-after": "2"}) == 1.5
    assert 28 < retry_after_s({"retry-after": http_date}) <= 30
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None
