import logging

import pytest

from enrich_assets.models.vlm.factory import build_client
from enrich_assets.models.vlm.ledger import Budget, Price
from enrich_assets.models.vlm.stub_server import LocalStubServer
from enrich_assets.models.vlm.types import VLMRequest

SECRET = "sk-factory-SECRET-abcdef123456"


def test_local_stub_backend_runs_end_to_end_and_says_so(tmp_path):
    client = build_client(
        {"backend": "local-stub", "cache_dir": str(tmp_path), "retry": {"initial_s": 0.01}}
    )
    try:
        reply = client.complete(VLMRequest(kind="task_from_video", prompt="Task: fold towel"))
        assert reply.parsed == {"task": "fold towel"}
        assert reply.model == "stub-vlm:local-stub"
        assert client.complete(VLMRequest(kind="task_from_video", prompt="Task: fold towel")).cached
    finally:
        client.close()


def test_openai_backend_reads_the_key_from_the_named_env_var(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MY_VLM_KEY", SECRET)
    with LocalStubServer("gpt-4o-mini") as stub:
        settings = {
            "backend": "openai",
            "model": "gpt-4o-mini",
            "base_url": stub.base_url,
            "api_key_env": "MY_VLM_KEY",
            "concurrency": 4,
        }
        budget = Budget(1.0, Price(0.15, 0.6))
        client = build_client(settings, budget=budget)
        reply = client.complete(VLMRequest(kind="caption", prompt="Task: x", json_output=False))
    assert reply.model == "gpt-4o-mini:local-stub" and budget.spent_usd > 0
    assert "VLM client: backend=openai" in caplog.text
    assert SECRET not in caplog.text and SECRET not in repr(client)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backend": "bard"}, "unknown; use one of"),
        ({"backend": "openai", "api_key": "sk-x"}, "must not hold an API key"),
        ({"backend": "openai", "modle": "gpt-4o"}, r"unknown keys \['modle'\]"),
        ({"backend": "openai", "base_url": "http://h/v1"}, "need 'model'"),
        (
            {
                "backend": "openai",
                "model": "m",
                "base_url": "http://h/v1",
                "api_key_env": "SURELY_UNSET_VAR_42",
            },
            "SURELY_UNSET_VAR_42",
        ),
        ({"backend": "local-stub", "retry": {"max_attempts": 0}}, "invalid retry policy"),
    ],
)
def test_bad_settings_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        build_client(settings)
