"""The in-process backend, on a tiny untrained Qwen2-VL built from a config (no download)."""

import numpy as np
import pytest

from enrich_assets.models.vlm.types import VLMRequest

IMAGE = np.random.default_rng(0).integers(0, 255, (56, 70, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def client():
    from enrich_assets.models.vlm.transformers_client import tiny_random_qwen2_vl

    return tiny_random_qwen2_vl(max_repairs=1)


def test_caption_with_images_runs_the_real_generate_path(client):
    request = VLMRequest(
        kind="caption",
        prompt="Describe.",
        images=(IMAGE, IMAGE),
        system="You caption robot data.",
        json_output=False,
        max_tokens=12,
    )
    reply = client.complete(request)
    assert reply.model == "Qwen2-VL-tiny:random-init"
    assert reply.text  # noise, but decoded text from a real generate call
    assert reply.meta["finish_reason"] == "length"  # min_new_tokens kept it talking to the limit
    # cut off at the limit twice (answer + one repair): quarantined, tokens of both counted
    assert reply.error == "malformed output after 2 attempts: truncated, truncated"
    assert reply.output_tokens == 2 * 12
    assert reply.input_tokens > 2 * 2 * 4  # image tokens were spliced in, twice
    assert client.complete(request).text == reply.text  # greedy: deterministic


def test_untrained_json_is_quarantined_after_repairs(client):
    reply = client.complete(VLMRequest(kind="vqa", prompt="Count: 2", max_tokens=10))
    assert reply.parsed is None and reply.attempts == 2
    assert reply.error.startswith("malformed output after 2 attempts")


def test_missing_weights_say_what_to_do():
    from enrich_assets.models.vlm.transformers_client import TransformersVLMClient

    with pytest.raises(RuntimeError, match="cannot load VLM '/nonexistent/qwen'.*local folder"):
        TransformersVLMClient.from_pretrained("/nonexistent/qwen")


def test_factory_builds_the_random_init_profile():
    from enrich_assets.models.vlm.factory import build_client

    client = build_client({"backend": "transformers", "random_init": True, "min_new_tokens": 3})
    reply = client.complete(
        VLMRequest(kind="caption", prompt="Hi.", json_output=False, max_tokens=5)
    )
    assert reply.model.endswith(":random-init") and reply.output_tokens >= 3


def test_factory_applies_max_tokens_max_repairs_and_temperature():
    """The `vlm:` keys reach the in-process generate call: max_tokens caps each answer,
    max_repairs bounds the attempts, temperature > 0 samples (so two answers differ)."""
    from enrich_assets.models.vlm.factory import build_client

    settings = {"backend": "transformers", "random_init": True, "min_new_tokens": 8}
    request = VLMRequest(kind="caption", prompt="Hi.", json_output=False, max_tokens=20)
    capped = build_client({**settings, "max_tokens": 4, "max_repairs": 0}).complete(request)
    assert capped.output_tokens == 4 and capped.attempts == 1  # truncated, not repaired
    hot = build_client({**settings, "temperature": 1.5, "max_repairs": 0})
    assert len({hot.complete(request).text for _ in range(3)}) > 1
