"""Every validator rule: a valid episode passes all of them, and each rule fires alone."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from enrich_assets.datasets.lerobot.language_format import LanguageRow, speech_atom
from enrich_assets.enrich.language.captions import Caption
from enrich_assets.enrich.language.validator import (
    RULES,
    blocking,
    check_captions,
    validate_episode,
)
from enrich_assets.enrich.language.vqa_answer import vqa_answer_shape
from enrich_assets.enrich.rules import Severity

CAM = "observation.images.cam_high"
TS = (np.arange(60) / 30).astype(np.float32)
T0, T1, T_OFF = float(TS[0]), float(TS[30]), float(TS[15])
ANSWER = json.dumps({"label": "bottle", "count": 1})

Rows = dict[str, list[LanguageRow]]


def valid() -> Rows:
    return {
        "plan": [
            LanguageRow("user", "pick up the bottle", "task_aug", T0),
            LanguageRow("assistant", "grasp the bottle", "subtask", T0),
            LanguageRow("assistant", "lift the bottle", "subtask", T1),
            LanguageRow("assistant", "1. grasp the bottle\n2. lift the bottle", "plan", T0),
            LanguageRow("assistant", "1. lift the bottle", "plan", T1),
            LanguageRow("assistant", "Done so far: grasp the bottle.", "memory", T1),
        ],
        "interjections": [
            LanguageRow("user", "Now lift it.", "interjection", T1),
            speech_atom(T1, "Lifting."),
        ],
        "vqa": [
            LanguageRow("user", "How many bottles?", "vqa", T0, CAM),
            LanguageRow("assistant", ANSWER, "vqa", T0, CAM),
        ],
    }


def failed(rows: Rows) -> set[str]:
    return {o.rule for o in validate_episode(rows, TS, [CAM]) if not o.passed}


def test_a_valid_episode_passes_every_rule():
    outcomes = validate_episode(valid(), TS, [CAM])
    assert [o.rule for o in outcomes] == list(RULES)
    assert all(o.passed for o in outcomes)


def set_row(module: str, i: int, **changes) -> Callable[[Rows], None]:
    def apply(rows: Rows) -> None:
        rows[module][i] = LanguageRow(**{**rows[module][i].to_dict(), **changes})

    return apply


def add(module: str, row: LanguageRow) -> Callable[[Rows], None]:
    return lambda rows: rows[module].append(row)


def drop(module: str, i: int) -> Callable[[Rows], None]:
    return lambda rows: rows[module].pop(i)


def swap_vqa(rows: Rows) -> None:
    rows["vqa"].reverse()  # the answer before its question


OLD_COUNT = json.dumps({"type": "count", "label": "bottle", "count": 1})
SAY_BAD_NAME = [{"type": "function", "function": {"name": "shout", "arguments": {"text": "hi"}}}]
SAY_NO_TEXT = [{"type": "function", "function": {"name": "say", "arguments": {}}}]

CASES = [
    ("language_style_known", add("plan", LanguageRow("assistant", "x", "narration", T0))),
    ("language_style_column", add("vqa", LanguageRow("assistant", "x", "plan", T0))),
    ("language_style_column", add("plan", LanguageRow("user", "x", "interjection", T1))),
    ("language_camera_presence", set_row("vqa", 0, camera=None)),
    ("language_camera_presence", set_row("plan", 1, camera=CAM)),
    ("language_camera_known", add("vqa", LanguageRow("user", "q?", "vqa", T1, "cam_nope"))),
    ("language_row_timestamp", add("vqa", LanguageRow("user", "q?", "vqa", None, CAM))),
    ("language_row_timestamp", add("vqa", LanguageRow("user", "q?", "vqa", 0.02, CAM))),
    ("language_interjection_speech", drop("interjections", 1)),
    ("language_interjection_plan", drop("plan", 4)),
    ("language_vqa_answer", set_row("vqa", 1, content=None)),
    ("language_vqa_answer", set_row("vqa", 1, content="one bottle")),
    ("language_vqa_answer", set_row("vqa", 1, content='{"label": "bottle", "count": -1}')),
    ("language_vqa_answer", set_row("vqa", 1, content="null")),
    # this project's former shape: a `type` field, no longer one of lerobot's
    ("language_vqa_answer", set_row("vqa", 1, content=OLD_COUNT)),
    ("language_vqa_unique", add("vqa", LanguageRow("assistant", ANSWER, "vqa", T0, CAM))),
    ("language_vqa_order", swap_vqa),
    ("language_vqa_order", drop("vqa", 0)),
    ("language_vqa_order", drop("vqa", 1)),
    ("language_row_content", set_row("plan", 0, content="")),
    ("language_speech_atom", set_row("interjections", 1, tool_calls=SAY_BAD_NAME)),
    ("language_speech_atom", set_row("interjections", 1, tool_calls=SAY_NO_TEXT)),
    ("language_speech_atom", set_row("interjections", 1, content="Lifting.")),
    ("language_speech_atom", add("interjections", LanguageRow("assistant", "hi", None, T1))),
    ("language_subtask_cover", drop("plan", 1)),
    ("language_subtask_cover", add("plan", LanguageRow("assistant", "again", "subtask", T1))),
    ("language_subtask_cover", add("plan", LanguageRow("assistant", "x", "subtask", 0.02))),
    ("language_memory_boundaries", add("plan", LanguageRow("assistant", "m", "memory", T_OFF))),
]


@pytest.mark.parametrize(
    ("rule", "mutate"), CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(CASES)]
)
def test_each_rule_fires(rule, mutate):
    rows = valid()
    mutate(rows)
    fired = failed(rows)
    assert rule in fired
    if RULES[rule] is Severity.ERROR:
        assert any(o.rule == rule for o in blocking(validate_episode(rows, TS, [CAM])))


def test_no_plan_is_only_a_warning():
    rows = {"plan": [], "interjections": [], "vqa": valid()["vqa"]}
    assert failed(rows) == {"language_plan_present"}
    assert blocking(validate_episode(rows, TS, [CAM])) == []


def test_every_rule_has_a_case():
    assert {r for r, _ in CASES} | {"language_plan_present"} == set(RULES)


def det(label: str, box: list[float]) -> dict:
    return {"label": label, "bbox_format": "xyxy", "bbox": box}


@pytest.mark.parametrize(
    ("answer", "shape"),
    [
        ({"detections": [det("cup", [10, 20, 30, 40])]}, "bbox"),
        ({"detections": [det("cup", [10, 20, 30, 40]), det("cup", [50, 0, 60, 8.5])]}, "bbox"),
        ({"detections": []}, "bbox"),  # nothing of the kind in view
        ({"detections": [det("cup", [30, 20, 10, 40])]}, None),
        ({"detections": [det("cup", [-1, 20, 10, 40])]}, None),
        ({"detections": [{**det("cup", [1, 2, 3, 4]), "bbox_format": "xywh"}]}, None),
        ({"detections": [{**det("cup", [1, 2, 3, 4]), "score": 0.9}]}, None),
        ({"detections": det("cup", [1, 2, 3, 4])}, None),
        ({"label": "handle", "point_format": "xy", "point": [320, 240]}, "keypoint"),
        ({"label": "handle", "point_format": "yx", "point": [320, 240]}, None),
        ({"label": "handle", "point_format": "xy", "point": [320]}, None),
        ({"label": "cup", "count": 0}, "count"),
        ({"label": "cup", "count": 2, "note": "one is half hidden"}, "count"),
        ({"label": "cup", "count": True}, None),
        ({"label": "cup", "attribute": "color", "value": "red"}, "attribute"),
        ({"label": "cup", "attribute": "color"}, None),
        ({"subject": "cup", "relation": "on", "object": "plate"}, "spatial"),
        ({"subject": "cup", "relation": "beside", "object": "plate"}, None),
        ({"type": "count", "label": "cup", "count": 0}, None),  # extra keys: no shape
        ({"type": "bbox", "label": "cup", "box": [0.1, 0.2, 0.3, 0.4]}, None),
        ({"type": "caption", "text": "a cup"}, None),
        ([1, 2], None),
    ],
)
def test_vqa_answer_shapes(answer, shape):
    assert vqa_answer_shape(answer) == shape


def caption(text: str | None) -> Caption:
    return Caption("cam", 3, text, "m", error=None if text else "timeout")


def test_caption_rules():
    good = " ".join(["word"] * 30) + ". " + " ".join(["word"] * 30) + "."
    one_sentence = " ".join(["word"] * 60) + "."
    too_long = ". ".join([" ".join(["word"] * 70)] * 3) + "."
    results = {o.rule: o for o in check_captions([caption(good)])}
    assert results["caption_length"].passed and results["caption_present"].passed
    for bad in (one_sentence, too_long, "Too short. Really."):
        assert not {o.rule: o for o in check_captions([caption(bad)])}["caption_length"].passed
    missing = {o.rule: o for o in check_captions([caption(None)])}["caption_present"]
    assert not missing.passed and missing.severity is Severity.WARN and "timeout" in missing.message
