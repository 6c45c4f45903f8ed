"""JSONL staging in lerobot's layout: round trip, module isolation, atomic replacement."""

from __future__ import annotations

import json

import pytest

from enrich_assets.datasets.lerobot import language_staging as staging
from enrich_assets.datasets.lerobot.language_format import LanguageRow, speech_atom

PLAN = [LanguageRow("assistant", "grasp the bottle", "subtask", 0.0)]
EVENTS = [
    LanguageRow("user", "Now lift it.", "interjection", 1.0333333),
    speech_atom(1.0333333, "Ok."),
]


def test_round_trip_in_lerobot_layout(tmp_path):
    path = staging.write_staged(tmp_path, 7, "interjections", EVENTS)
    assert path == tmp_path / ".annotate_staging" / "episode_000007" / "interjections.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    assert set(first) == {"role", "content", "style", "timestamp", "camera", "tool_calls"}
    assert staging.read_staged(tmp_path, 7, "interjections") == EVENTS
    assert staging.read_staged(tmp_path, 7, "vqa") == []


def test_rerunning_one_module_leaves_the_others_alone(tmp_path):
    staging.write_staged(tmp_path, 0, "plan", PLAN)
    staging.write_staged(tmp_path, 0, "interjections", EVENTS)
    before = staging.staging_path(tmp_path, 0, "plan").read_bytes()
    staging.write_staged(tmp_path, 0, "interjections", EVENTS[:1])
    assert staging.staging_path(tmp_path, 0, "plan").read_bytes() == before
    assert staging.read_episode(tmp_path, 0) == {
        "plan": PLAN,
        "interjections": EVENTS[:1],
        "vqa": [],
    }
    assert staging.staged_modules(tmp_path, 0) == ["plan", "interjections"]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    staging.write_staged(tmp_path, 0, "plan", PLAN)
    bad = [LanguageRow("assistant", "x", "subtask", 0.0, tool_calls=[{"f": {1, 2}}])]  # not JSON
    with pytest.raises(TypeError):
        staging.write_staged(tmp_path, 0, "plan", bad)
    assert staging.read_staged(tmp_path, 0, "plan") == PLAN
    assert [p.name for p in staging.staging_path(tmp_path, 0, "plan").parent.iterdir()] == [
        "plan.jsonl"
    ]


def test_bad_input_names_the_file(tmp_path):
    with pytest.raises(ValueError, match="unknown language module"):
        staging.staging_path(tmp_path, 0, "captions")
    path = staging.staging_path(tmp_path, 0, "vqa")
    path.parent.mkdir(parents=True)
    path.write_text('{"content": "no role"}\n')
    with pytest.raises(ValueError, match=r"vqa.jsonl:1: language row without a role"):
        staging.read_staged(tmp_path, 0, "vqa")
