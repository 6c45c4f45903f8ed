"""The VLM path under failure, over real HTTP against the local stub server: every settings
key takes effect, a 200 that is no completion is retried then quarantined, every request is a
ledger row, secrets are redacted everywhere, an unpriced model is refused under a budget."""

import logging

import numpy as np
import pyarrow.parquet as pq
import pytest

from enrich_assets.defs.vlm_resource import VLMResource, vlm_config
from enrich_assets.infra.redact import MASK, redact
from enrich_assets.infra.schema import to_table
from enrich_assets.models.vlm.call import complete_concurrently
from enrich_assets.models.vlm.ledger import (
    LEDGER_TABLE,
    BudgetExceeded,
    UnknownModelPrice,
    ledger_entry,
    load_prices,
)
from enrich_assets.models.vlm.openai_client import VLMCallRejected, VLMUnavailable
from enrich_assets.models.vlm.stub_server import Fault, LocalStubServer
from enrich_assets.models.vlm.types import VLMReply, VLMRequest

TASK = VLMRequest(kind="task_aug", prompt="Task: open the drawer\nCount: 2")
FAST = {"initial_s": 0.01, "max_s": 0.02}
SECRET = "sk-proj-TRUTH-abcdef0123456789"


@pytest.fixture
def stub():
    with LocalStubServer("gpt-4o-mini") as server:
        yield server


def _resource(tmp_path, monkeypatch, stub, vlm_yaml: str) -> VLMResource:
    """The resource exactly as definitions.py builds it, from a settings file."""
    path = tmp_path / "enrich-assets.yaml"
    path.write_text(
        f"vlm:\n  backend: openai\n  model: gpt-4o-mini\n  base_url: {stub.base_url}\n{vlm_yaml}"
    )
    monkeypatch.setenv("ENRICH_SETTINGS", str(path))
    return VLMResource(**vlm_config())


def _complete(resource, request=TASK, run_id="run-1"):
    with resource.session(run_id) as client:
        return client.complete(request)


# ---- A. every documented vlm key is applied ----


def test_temperature_and_max_tokens_arrive_in_the_request_body(tmp_path, monkeypatch, stub):
    resource = _resource(tmp_path, monkeypatch, stub, "  temperature: 0.4\n  max_tokens: 77\n")
    _complete(resource)
    assert stub.recent[-1]["temperature"] == 0.4 and stub.recent[-1]["max_tokens"] == 77


def test_json_mode_off_sends_no_response_format(tmp_path, monkeypatch, stub):
    _complete(_resource(tmp_path, monkeypatch, stub, ""))
    assert stub.recent[-1]["response_format"] == {"type": "json_object"}
    _complete(_resource(tmp_path, monkeypatch, stub, "  json_mode: false\n"))
    assert "response_format" not in stub.recent[-1]


def test_image_format_sets_the_encoding_of_images(tmp_path, monkeypatch, stub):
    image = np.full((8, 8, 3), 128, np.uint8)
    caption = VLMRequest(kind="caption", prompt="Task: x", images=(image,), json_output=False)
    _complete(_resource(tmp_path, monkeypatch, stub, "  image_format: jpeg\n"), caption)
    parts = stub.recent[-1]["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert urls and all(u.startswith("data:image/jpeg;base64,") for u in urls)


@pytest.mark.parametrize("max_repairs", [0, 1])
def test_max_repairs_bounds_the_repair_attempts(tmp_path, monkeypatch, stub, max_repairs):
    resource = _resource(tmp_path, monkeypatch, stub, f"  max_repairs: {max_repairs}\n")
    stub.faults.push(*[Fault("malformed")] * 4)
    reply = _complete(resource)
    assert reply.error and reply.attempts == max_repairs + 1
    assert stub.request_count == max_repairs + 1


def test_retry_max_attempts_bounds_the_retries(tmp_path, monkeypatch, stub):
    retry = "  retry: {max_attempts: 2, initial_s: 0.01, max_s: 0.02, jitter: 0.1}\n"
    resource = _resource(tmp_path, monkeypatch, stub, retry)
    stub.faults.push(*[Fault("500")] * 5)
    with pytest.raises(VLMUnavailable, match="failed 2 times"):
        _complete(resource)
    assert stub.request_count == 2


def test_concurrency_and_timeout_reach_the_client(tmp_path, monkeypatch, stub):
    resource = _resource(tmp_path, monkeypatch, stub, "  concurrency: 3\n  timeout_s: 0.3\n")
    stub.faults.push(Fault("delay", delay_s=1.0))
    with resource.session("r") as client:
        assert client.concurrency == 3
        assert client.complete(TASK).error is None  # the slow one timed out, was retried
    assert stub.request_count == 2


# ---- B1. an HTTP 200 that is not a chat completion ----


@pytest.mark.parametrize("kind", ["empty_choices", "no_message", "html", "not_json"])
def test_a_200_that_is_no_completion_is_retried(tmp_path, monkeypatch, stub, kind):
    resource = _resource(tmp_path, monkeypatch, stub, f"  retry: {FAST}\n")
    stub.faults.push(Fault(kind))
    reply = _complete(resource)
    assert reply.error is None and reply.parsed["rephrasings"]
    assert stub.request_count == 2


@pytest.mark.parametrize("kind", ["empty_choices", "no_message", "html", "not_json"])
def test_a_200_that_stays_no_completion_quarantines_the_item(tmp_path, monkeypatch, stub, kind):
    retry = "  retry: {max_attempts: 3, initial_s: 0.01, max_s: 0.02}\n"
    resource = _resource(tmp_path, monkeypatch, stub, retry)
    stub.faults.push(*[Fault(kind)] * 3)
    reply = _complete(resource)
    assert reply.error.startswith("invalid completion: 3 attempts")
    assert "not a chat completion" in reply.error
    assert stub.request_count == 3
    row = ledger_entry(TASK, reply, run_id="r", asset="a", partition="p", prices=load_prices())
    assert row.status == "quarantined" and row.error == reply.error


# ---- B2. every request is a ledger row, a failed one too ----


def test_a_request_that_raises_still_leaves_a_ledger_row(tmp_path, monkeypatch, stub):
    resource = _resource(tmp_path, monkeypatch, stub, "  retry: {max_attempts: 1}\n")
    stub.faults.push(Fault("malformed"), Fault("500"))  # first answer repaired, repair fails
    seen = []
    with resource.session("r") as client:
        with pytest.raises(VLMUnavailable):
            complete_concurrently(client.complete, [TASK], 1, lambda q, a: seen.append((q, a)))
    [(request, reply)] = seen
    row = ledger_entry(request, reply, run_id="r", asset="a", partition="p", prices=load_prices())
    assert row.status == "failed" and row.error.startswith("VLMUnavailable: ")
    assert row.attempts == 2 and row.input_tokens > 0 and row.cost_usd > 0  # the paid try


def test_a_call_the_budget_refused_is_a_refused_row(tmp_path, monkeypatch, stub):
    resource = _resource(tmp_path, monkeypatch, stub, "  budget_usd: 0.0000001\n")
    seen = []
    with resource.session("r") as client:
        with pytest.raises(BudgetExceeded):
            complete_concurrently(client.complete, [TASK], 1, lambda q, a: seen.append(a))
    row = ledger_entry(TASK, seen[0], run_id="r", asset="a", partition="p", prices=load_prices())
    assert (row.status, row.cost_usd, stub.request_count) == ("refused", 0.0, 0)


# ---- B3. secrets redacted ----


def test_a_401_echoing_the_key_leaks_it_nowhere(tmp_path, monkeypatch, stub, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TRUTH_KEY", SECRET)
    resource = _resource(tmp_path, monkeypatch, stub, "  api_key_env: TRUTH_KEY\n")
    stub.faults.push(Fault("401_echo"))
    seen = []
    with resource.session("r") as client:
        with pytest.raises(VLMCallRejected) as info:
            complete_concurrently(client.complete, [TASK], 1, lambda q, a: seen.append((q, a)))
    message = str(info.value)
    assert "HTTP 401" in message and MASK in message and SECRET not in message
    [(request, reply)] = seen
    row = ledger_entry(request, reply, run_id="r", asset="a", partition="p", prices=load_prices())
    assert row.status == "failed" and MASK in row.error
    path = tmp_path / "ledger.parquet"
    provenance = {"dataset_id": "d", "episode_index": 0, "code_version": "", "created_at": None}
    pq.write_table(to_table(LEDGER_TABLE, [{**provenance, **row.as_row()}]), path)
    assert SECRET.encode() not in path.read_bytes()
    assert SECRET not in caplog.text


def test_redact_masks_registered_keys_bearer_and_sk_tokens():
    text = "auth Bearer abc.def-123 failed; key sk-live-0123456789ab; other=hunter2hunter2"
    out = redact(text, secrets=["hunter2hunter2"])
    assert out == f"auth {MASK} failed; key {MASK}; other={MASK}"
    assert redact(None) is None and redact("nothing here") == "nothing here"


# ---- B4. a model without a price ----


def test_unpriced_model_is_refused_before_any_call_under_a_budget(tmp_path, monkeypatch, stub):
    path = tmp_path / "enrich-assets.yaml"
    path.write_text(
        f"vlm: {{backend: openai, model: no-such-model, base_url: '{stub.base_url}', "
        "budget_usd: 1.0}\n"
    )
    monkeypatch.setenv("ENRICH_SETTINGS", str(path))
    with pytest.raises(UnknownModelPrice) as info:
        VLMResource(**vlm_config()).client("r")
    assert "budget_usd is set but no price for model 'no-such-model'" in str(info.value)
    assert "\n" not in str(info.value) and stub.request_count == 0


def test_unpriced_model_without_a_budget_is_warned_and_costs_unknown(
    tmp_path, monkeypatch, stub, caplog
):
    path = tmp_path / "enrich-assets.yaml"
    path.write_text(
        f"vlm: {{backend: openai, model: no-such-model, base_url: '{stub.base_url}'}}\n"
    )
    monkeypatch.setenv("ENRICH_SETTINGS", str(path))
    with caplog.at_level(logging.WARNING):
        assert _complete(VLMResource(**vlm_config())).error is None  # the call is made
    assert "no price for model 'no-such-model'" in caplog.text
    reply = VLMReply(model="no-such-model", text="x", input_tokens=10, output_tokens=5)
    row = ledger_entry(TASK, reply, run_id="r", asset="a", partition="p", prices=load_prices())
    assert row.status == "ok" and row.cost_usd is None
