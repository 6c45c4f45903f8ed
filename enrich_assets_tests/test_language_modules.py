"""plan / interjections / vqa modules against a scripted VLM peer, on synthetic frames."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from enrich_assets.enrich.language.interjections import run_interjections
from enrich_assets.enrich.language.module import EpisodeInput, Subtask
from enrich_assets.enrich.language.plan import (
    interjection_positions,
    run_plan,
    stitch_cover,
    subtasks_from_rows,
)
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.enrich.language.validator import blocking, validate_episode
from enrich_assets.enrich.language.vqa import run_vqa
from enrich_assets.models.vlm.types import VLMReply
from enrich_assets_tests.language_scripted_vlm import ScriptedVLM, answer

CAMERAS = ["observation.images.cam_high", "observation.images.cam_wrist"]
TASK = "Pick up the yellow bottle on the table."


def episode_timestamps(seconds: float, fps: int = 30) -> np.ndarray:
    return (np.arange(int(seconds * fps)) / fps).astype(np.float32)


def fetch(camera: str, positions) -> list[np.ndarray]:
    return [np.full((48, 64, 3), p % 256, np.uint8) for p in positions]


DEFAULTS = LanguageSettings()


def run_all(timestamps, settings=DEFAULTS, client=None, task=TASK):
    client = client or ScriptedVLM()
    episode = EpisodeInput(0, timestamps, fetch, CAMERAS, task, settings)
    plan = run_plan(episode, client)
    planned = replace(episode, task=plan.task, subtasks=plan.subtasks)
    inter = run_interjections(planned, client)
    vqa = run_vqa(planned, client)
    return client, plan, inter, vqa


def test_thirty_second_episode_passes_every_rule_in_few_calls():
    ts = episode_timestamps(30)
    client, plan, inter, vqa = run_all(ts)
    rows = {"plan": plan.rows, "interjections": inter.rows, "vqa": vqa.rows}
    outcomes = validate_episode(rows, ts, CAMERAS) + plan.outcomes + inter.outcomes + vqa.outcomes
    assert [o.rule for o in outcomes if not o.passed] == []
    kinds = [r.kind for r in client.requests]
    assert kinds.count("plan_describe") == kinds.count("plan_segment") == 1
    assert kinds.count("vqa") == len(CAMERAS)  # 31 questions per camera, one call each
    assert kinds.count("interjection") == 3
    assert len(kinds) == 8  # describe, segment, task_aug, 3 interjections, 2 vqa


def test_plan_covers_every_frame_once_and_refreshes_at_interjections():
    ts = episode_timestamps(30)
    _, plan, inter, _ = run_all(ts)
    covered = np.concatenate([np.arange(s.start, s.end + 1) for s in plan.subtasks])
    assert np.array_equal(covered, np.arange(len(ts)))
    plan_times = sorted(r.timestamp for r in plan.rows if r.style == "plan")
    inter_times = sorted(r.timestamp for r in inter.rows if r.style == "interjection")
    assert plan_times == [float(ts[0]), *inter_times]
    first_plan = next(r for r in plan.rows if r.style == "plan" and r.timestamp == 0.0)
    assert first_plan.content.splitlines()[0] == "1. reach for the yellow bottle"
    memory = [r for r in plan.rows if r.style == "memory"]
    assert [m.timestamp for m in memory] == [float(ts[s.start]) for s in plan.subtasks[1:]]
    assert memory[-1].content.startswith("Done so far: reach for the yellow bottle; grasp")


def test_task_aug_has_the_task_then_n_rephrasings():
    _, plan, _, _ = run_all(episode_timestamps(10), LanguageSettings(task_aug_count=4))
    aug = [r.content for r in plan.rows if r.style == "task_aug"]
    assert aug[0] == TASK and len(aug) == 5 and len(set(aug)) == 5


@pytest.mark.parametrize(
    ("mode", "task", "derived"),
    [
        ("if_short", "debug", True),
        ("if_short", TASK, False),
        ("always", TASK, True),
        ("off", "", False),
    ],
)
def test_task_from_video_modes(mode, task, derived):
    client, plan, _, _ = run_all(
        episode_timestamps(10), LanguageSettings(derive_task=mode), task=task
    )
    derive = [r for r in client.requests if r.kind == "task_from_video"]
    assert len(derive) == derived
    assert all(len(r.images) == 11 for r in derive)  # every sampled frame of the 10 s
    assert plan.task == ("pick up the yellow bottle from the table" if derived else task)


def test_long_episode_is_windowed_and_still_one_cover():
    ts = episode_timestamps(70)  # 71 frames at 1 fps > 32 per call
    client, plan, _, _ = run_all(ts)
    segments = [r for r in client.requests if r.kind == "plan_segment"]
    assert len(segments) == 3 and all(len(r.images) <= 32 for r in client.requests)
    assert plan.subtasks[0].start == 0 and plan.subtasks[-1].end == len(ts) - 1
    assert all(a.end + 1 == b.start for a, b in zip(plan.subtasks, plan.subtasks[1:], strict=False))


def test_segment_answers_off_the_listed_frames_are_snapped_and_gaps_stitched():
    def sloppy(request):
        if request.kind == "plan_segment":  # starts late, a gap, a frame never sent
            return {
                "subtasks": [
                    {"text": "grasp", "start_frame": 100, "end_frame": 200},
                    {"text": "lift", "start_frame": 452, "end_frame": 899},
                ]
            }
        return answer(request)

    ts = episode_timestamps(30)
    _, plan, _, _ = run_all(ts, client=ScriptedVLM(sloppy))
    assert plan.subtasks == [Subtask("grasp", 0, 449), Subtask("lift", 450, 899)]


def test_failed_segment_call_gives_no_plan_and_a_warning():
    def broken(request):
        if request.kind == "plan_segment":
            return VLMReply(model="m", text="", error="malformed JSON after 2 repairs")
        return answer(request)

    ts = episode_timestamps(30)
    _, plan, inter, _ = run_all(ts, client=ScriptedVLM(broken))
    assert plan.subtasks == [] and inter.rows == []
    assert not plan.outcomes[0].passed and "malformed JSON" in plan.outcomes[0].message
    outcomes = validate_episode({"plan": plan.rows}, ts, CAMERAS)
    assert blocking(outcomes) == []
    assert [o.rule for o in outcomes if not o.passed] == ["language_plan_present"]


def test_an_episode_without_frames_is_refused():
    with pytest.raises(ValueError, match="episode 4 has no frames"):
        empty = EpisodeInput(4, np.array([], np.float32), fetch, CAMERAS, TASK, DEFAULTS)
        run_plan(empty, ScriptedVLM())


def test_interjection_positions_are_seeded_boundaries():
    ts = episode_timestamps(30)
    subtasks = stitch_cover([(0, "a"), (150, "b"), (300, "c"), (450, "d"), (600, "e")], len(ts))
    settings = LanguageSettings()
    first = interjection_positions(subtasks, ts, 0, settings)
    assert first == interjection_positions(subtasks, ts, 0, settings)
    assert len(first) == 3 and set(first) <= {150, 300, 450, 600}
    others = {tuple(interjection_positions(subtasks, ts, ep, settings)) for ep in range(10)}
    assert len(others) > 1  # the seed includes the episode
    late = replace(settings, interjection_min_t=12)  # boundaries at 5 s and 10 s too early
    assert interjection_positions(subtasks, ts, 0, late) == [450, 600]


def test_interjections_rerun_from_staged_plan_rows_gives_the_same_rows():
    ts = episode_timestamps(30)
    client, plan, inter, _ = run_all(ts)
    staged = EpisodeInput(
        0, ts, fetch, CAMERAS, TASK, LanguageSettings(), subtasks_from_rows(plan.rows, ts)
    )
    again = run_interjections(staged, client)
    assert again.rows == inter.rows
    speech = [r for r in inter.rows if r.style is None]
    assert speech[0].tool_calls[0]["function"] == {
        "name": "say",
        "arguments": {"text": "Lifting it."},
    }


def test_vqa_drops_unusable_answers_and_reports_them():
    def half_bad(request):
        reply = answer(request)
        if request.kind == "vqa":
            reply["qa"][0]["answer"] = {"type": "bbox", "label": "x", "box": [0.1, 0.1, 0.2, 0.5]}
            reply["qa"] = reply["qa"][:-1]  # one pair short
        return reply

    ts = episode_timestamps(10)
    _, _, _, vqa = run_all(ts, client=ScriptedVLM(half_bad))
    assert len(vqa.rows) == 2 * len(CAMERAS) * (11 - 2)
    assert not vqa.outcomes[0].passed and "10 pairs for 11 frames" in vqa.outcomes[0].message
    assert blocking(validate_episode({"vqa": vqa.rows}, ts, CAMERAS)) == []


def vqa_payloads(rows) -> dict[tuple[float, str], dict]:
    return {(r.timestamp, r.camera): json.loads(r.content) for r in rows if r.role == "assistant"}


@pytest.mark.parametrize("max_side", [32, 20])
def test_vqa_answers_on_shrunk_frames_are_scaled_to_the_decoded_frame(max_side):
    ts = episode_timestamps(4)
    full_client, *_, full = run_all(ts, replace(DEFAULTS, vqa_types=("bbox", "keypoint")))
    small_client, *_, small = run_all(
        ts, replace(DEFAULTS, vqa_types=("bbox", "keypoint"), vqa_max_side=max_side)
    )
    sent = {im.shape for r in small_client.requests if r.kind == "vqa" for im in r.images}
    assert sent == {(max_side * 3 // 4, max_side, 3)}  # 64x48 frames, shrunk
    assert "Image size: 64x48" in next(r for r in full_client.requests if r.kind == "vqa").prompt
    # the peer answered in pixels of what it was sent; the rows hold decoded-frame pixels
    expected, got = vqa_payloads(full.rows), vqa_payloads(small.rows)
    assert got.keys() == expected.keys() and len(got) == len(CAMERAS) * 5
    for key, full_answer in expected.items():
        coords, scaled = (
            (a["detections"][0]["bbox"] if "detections" in a else a["point"])
            for a in (full_answer, got[key])
        )
        assert scaled == pytest.approx(coords, abs=0.06)
        assert all(0 <= v <= 64 for v in coords[::2]) and all(0 <= v <= 48 for v in coords[1::2])


def test_vqa_rows_are_question_then_answer_once_per_frame_and_camera():
    ts = episode_timestamps(10)
    *_, vqa = run_all(ts)
    pairs = [vqa.rows[i : i + 2] for i in range(0, len(vqa.rows), 2)]
    assert [(q.role, a.role) for q, a in pairs] == [("user", "assistant")] * len(pairs)
    assert all((q.timestamp, q.camera) == (a.timestamp, a.camera) for q, a in pairs)
    assert len({(q.timestamp, q.camera) for q, _ in pairs}) == len(pairs) == 11 * len(CAMERAS)


def test_vqa_drops_answers_off_the_image_sent():
    def off_image(request):
        reply = answer(request)
        if request.kind == "vqa":
            w, h = request.images[0].shape[1], request.images[0].shape[0]
            reply["qa"][0]["answer"] = {"label": "cap", "point_format": "xy", "point": [w + 5, h]}
        return reply

    ts = episode_timestamps(2)
    *_, vqa = run_all(ts, client=ScriptedVLM(off_image))
    assert len(vqa.rows) == 2 * len(CAMERAS) * (3 - 1)
    assert (
        "unusable pair" in vqa.outcomes[0].message
        and "'point': [69, 48]" in vqa.outcomes[0].message
    )
