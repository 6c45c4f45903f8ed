"""The local stub: documented shapes for every kind (docs/vlm.md), faults over HTTP."""

import json
import re
import urllib.error
import urllib.request

import numpy as np
import pytest

from enrich_assets.enrich.language.vqa_answer import answer_inside, vqa_answer_shape
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
    text = scripted_answer("caption", PROMPT, [(64, 48)] * 3)
    assert 50 <= len(text.split()) <= 200
    assert 2 <= len(re.findall(r"[.!?](\s|$)", text)) <= 3
    assert "cup" in text and "plate" in text and "3 frames" in text


def test_caption_stays_in_bounds_for_a_very_long_task():
    text = scripted_answer("caption", "Task: " + "stack the blocks " * 80, [(64, 48)])
    assert 50 <= len(text.split()) <= 200


@pytest.mark.parametrize("frames", [[5], [0, 30], [0, 10, 20], [3, 9, 1, 40, 22, 17, 60, 61, 80]])
def test_plan_segment_spans_use_only_listed_frames_contiguously(frames):
    prompt = PROMPT + "Frames: " + ", ".join(map(str, frames))
    subtasks = json.loads(scripted_answer("plan_segment", prompt, [(64, 48)] * len(frames)))[
        "subtasks"
    ]
    listed = sorted(frames)
    assert subtasks[0]["start_frame"] == listed[0]
    assert subtasks[-1]["end_frame"] == listed[-1]
    for s in subtasks:
        assert s["start_frame"] in listed and s["end_frame"] in listed
        assert s["start_frame"] <= s["end_frame"] and s["text"]
    for a, b in zip(subtasks, subtasks[1:], strict=False):
        assert b["start_frame"] == a["end_frame"] and a["start_frame"] < a["end_frame"]


def test_plan_segment_without_frames_line_uses_image_positions():
    subtasks = json.loads(scripted_answer("plan_segment", PROMPT, [(64, 48)] * 4))["subtasks"]
    assert subtasks[0]["start_frame"] == 0 and subtasks[-1]["end_frame"] == 3


@pytest.mark.parametrize("count", [1, 5, 25])
def test_task_aug_returns_count_distinct_rephrasings(count):
    out = json.loads(scripted_answer("task_aug", PROMPT + f"Count: {count}", []))["rephrasings"]
    assert len(out) == count == len(set(out))
    assert all("cup" in r for r in out)


def test_interjection_and_task_from_video_shapes():
    inter = json.loads(scripted_answer("interjection", PROMPT, [(64, 48)]))
    assert set(inter) == {"text", "say"} and "cup" in inter["text"]
    assert json.loads(scripted_answer("task_from_video", PROMPT, [(64, 48)] * 4)) == {
        "task": "pick up the red cup and put it on the plate"
    }
    assert json.loads(scripted_answer("task_from_video", "Describe.", [(64, 48)] * 4))["task"]


def test_vqa_answers_are_lerobots_shapes_in_pixels_of_each_image():
    sizes = [(640, 480), (64, 48)] * 5
    qa = json.loads(scripted_answer("vqa", PROMPT + "Count: 10", sizes))["qa"]
    assert len(qa) == 10
    assert {vqa_answer_shape(item["answer"]) for item in qa} == set(VQA_TYPES)
    for item, (w, h) in zip(qa, sizes, strict=True):
        assert item["question"].endswith(("?", "."))
        assert answer_inside(item["answer"], w, h)
    big_box = qa[0]["answer"]["detections"][0]["bbox"]
    assert big_box[2] > 64  # pixels of the 640x480 image, not fractions
    assert all(type(v) is int for v in big_box)


def test_vqa_without_images_uses_the_image_size_line():
    prompt = PROMPT + "Count: 5\nImage size: 1280x720"
    for size, limit in ((([], (1280, 720))), (([(0, 0)], (1280, 720)))):
        qa = json.loads(scripted_answer("vqa", prompt, size))["qa"]
        assert all(answer_inside(item["answer"], *limit) for item in qa)
        point = qa[1]["answer"]["point"]
        assert point[0] > 64 or point[1] > 48  # pixels of a 1280x720 image


def test_vqa_types_line_restricts_answers():
    qa = json.loads(scripted_answer("vqa", PROMPT + "Count: 4\nTypes: count, bbox", [(64, 48)]))
    assert [vqa_answer_shape(q["answer"]) for q in qa["qa"]] == ["count", "bbox", "count", "bbox"]


def test_answers_are_deterministic():
    assert scripted_answer("vqa", PROMPT, [(64, 48)]) == scripted_answer("vqa", PROMPT, [(64, 48)])


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
    for item in replies[5].parsed["qa"]:  # pixels of the 16x16 images the stub received
        assert answer_inside(item["answer"], 16, 16)


def test_stub_answers_vqa_in_pixels_of_the_images_it_received(stub):
    client = OpenAIVLMClient(stub.model, [stub.base_url], image_format="jpeg")
    prompt = PROMPT + "Count: 8\nTypes: bbox, keypoint\nImage size: 16x16"
    for w, h in ((320, 200), (40, 30)):
        image = np.zeros((h, w, 3), np.uint8)
        reply = client.complete(VLMRequest(kind="vqa", prompt=prompt, images=(image,) * 8))
        answers = [item["answer"] for item in reply.parsed["qa"]]
        assert all(answer_inside(a, w, h) for a in answers)
        xs = [
            a["detections"][0]["bbox"][2] if "detections" in a else a["point"][0] for a in answers
        ]
        assert max(xs) > 16 if w == 320 else max(xs) <= 40


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
