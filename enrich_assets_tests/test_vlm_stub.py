"""The local stub: documented shapes for every kind (docs/vlm.md), faults over HTTP."""

import json
import re
import urllib.error
import urllib.request

import numpy as np
import pytest

from enrich_assets.models.vlm.openai_client import OpenAIVLMClient, RetryPolicy
from enrich_assets.models.vlm.stub_answers import VQA_TYPES, scripted_answer
from enrich_assets.models.vlm.stub_server import Fault, LocalStubServer
from enrich_assets.models.vlm.types import VLMRequest

PROMPT = "Describe the episode.\nTask: pick up the red cup and put it on the plate\n"


@pytest.fixture
def stub():
    with LocalStubServer() as server:
        yield server


def _http(method, url, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_caption_is_two_or_three_sentences_naming_objects():
    text = scripted_answer("caption", PROMPT, n_images=3)
    assert 50 <= len(text.split()) <= 200
    assert 2 <= len(re.findall(r"[.!?](\s|$)", text)) <= 3
    assert "cup" in text and "plate" in text and "3 frames" in text


def test_caption_stays_in_bounds_for_a_very_long_task():
    text = scripted_answer("caption", "Task: " + "stack the blocks " * 80, n_images=1)
    assert 50 <= len(text.split()) <= 200


@pytest.mark.parametrize("frames", [[5], [0, 30], [0, 10, 20], [3, 9, 1, 40, 22, 17, 60, 61, 80]])
def test_plan_segment_spans_use_only_listed_frames_contiguously(frames):
    prompt = PROMPT + "Frames: " + ", ".join(map(str, frames))
    subtasks = json.loads(scripted_answer("plan_segment", prompt, n_images=len(frames)))["subtasks"]
    listed = sorted(frames)
    assert subtasks[0]["start_frame"] == listed[0]
    assert subtasks[-1]["end_frame"] == listed[-1]
    for s in subtasks:
        assert s["start_frame"] in listed and s["end_frame"] in listed
        assert s["start_frame"] <= s["end_frame"] and s["text"]
    for a, b in zip(subtasks, subtasks[1:], strict=False):
        assert b["start_frame"] == a["end_frame"] and a["start_frame"] < a["end_frame"]


def test_plan_segment_without_frames_line_uses_image_positions():
    subtasks = json.loads(scripted_answer("plan_segment", PROMPT, n_images=4))["subtasks"]
    assert subtasks[0]["start_frame"] == 0 and subtasks[-1]["end_frame"] == 3


@pytest.mark.parametrize("count", [1, 5, 25])
def test_task_aug_returns_count_distinct_rephrasings(count):
    out = json.loads(scripted_answer("task_aug", PROMPT + f"Count: {count}", 0))["rephrasings"]
    assert len(out) == count == len(set(out))
    assert all("cup" in r for r in out)


def test_interjection_and_task_from_video_shapes():
    inter = json.loads(scripted_answer("interjection", PROMPT, 1))
    assert set(inter) == {"text", "say"} and "cup" in inter["text"]
    assert json.loads(scripted_answer("task_from_video", PROMPT, 4)) == {
        "task": "pick up the red cup and put it on the plate"
    }
    assert json.loads(scripted_answer("task_from_video", "Describe.", 4))["task"]


def test_vqa_answers_follow_the_five_documented_shapes():
    qa = json.loads(scripted_answer("vqa", PROMPT + "Count: 10", 1))["qa"]
    assert len(qa) == 10
    assert {item["answer"]["type"] for item in qa} == set(VQA_TYPES)
    for item in qa:
        a = item["answer"]
        assert item["question"].endswith(("?", "."))
        if a["type"] == "bbox":
            x0, y0, x1, y1 = a["box"]
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        elif a["type"] == "keypoint":
            assert all(0 <= v <= 1 for v in a["point"])
        elif a["type"] == "count":
            assert isinstance(a["count"], int) and a["count"] >= 0
        elif a["type"] == "attribute":
            assert a["attribute"] and a["value"] and a["label"]
        else:
            assert a["relation"] in {
                "left_of",
                "right_of",
                "above",
                "below",
                "in_front_of",
                "behind",
                "on",
                "in",
                "near",
            }


def test_vqa_types_line_restricts_answers():
    qa = json.loads(scripted_answer("vqa", PROMPT + "Count: 4\nTypes: count, bbox", 1))["qa"]
    assert [q["answer"]["type"] for q in qa] == ["count", "bbox", "count", "bbox"]


def test_answers_are_deterministic():
    assert scripted_answer("vqa", PROMPT, 1) == scripted_answer("vqa", PROMPT, 1)


def test_every_kind_over_http_with_the_real_client(stub):
    client = OpenAIVLMClient(stub.model, [stub.base_url])
    image = np.zeros((16, 16, 3), np.uint8)
    kinds = {
        "caption": False,
        "plan_describe": False,
        "plan_segment": True,
        "task_aug": True,
        "interjection": True,
        "vqa": True,
        "task_from_video": True,
    }
    requests = [
        VLMRequest(kind=k, prompt=PROMPT + "Frames: 0, 8, 16", images=(image,) * 3, json_output=j)
        for k, j in kinds.items()
    ]
    replies = client.complete_many(requests)
    assert all(r.error is None and r.model == "stub-vlm:local-stub" for r in replies)
    assert "3 frames" in replies[0].text  # images arrived as image_url parts
    assert replies[2].parsed["subtasks"][-1]["end_frame"] == 16
    assert all(r.input_tokens > 3 * 85 and r.output_tokens > 0 for r in replies)
    assert stub.kinds == dict.fromkeys(kinds, 1)
    assert stub.recent[0]["messages"][-1]["content"][0]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )


def test_models_endpoint_and_fault_control_over_http(stub):
    status, models = _http("GET", stub.base_url + "/models")
    assert status == 200 and models["data"][0]["id"].endswith(":local-stub")
    root = stub.base_url.removesuffix("/v1")
    assert _http("POST", root + "/_faults", {"faults": [{"kind": "500"}]}) == (200, {"queued": 1})
    assert _http("POST", root + "/_faults", {"faults": [{"kind": "explode"}]})[0] == 400
    body = {"model": "m", "messages": [{"role": "user", "content": "Task: x"}]}
    assert _http("POST", stub.base_url + "/chat/completions", body)[0] == 500
    assert _http("POST", stub.base_url + "/chat/completions", body)[0] == 200
    assert _http("GET", root + "/_stats")[1] == {"requests": 2, "kinds": {"caption": 2}}


def test_stub_truncates_at_max_tokens(stub):
    client = OpenAIVLMClient(
        stub.model, [stub.base_url], max_repairs=0, retry=RetryPolicy(initial_s=0.01)
    )
    reply = client.complete(VLMRequest(kind="vqa", prompt=PROMPT + "Count: 20", max_tokens=20))
    assert reply.error and "truncated" in reply.error
    assert reply.meta["finish_reason"] == "length" and reply.output_tokens == 20


def test_fault_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("teapot")
