"""Cross-enrichment consistency checks on planted rows: each fires on a disagreement it was
given and stays quiet when the enrichments agree."""

import json

import numpy as np
import pyarrow as pa
import pytest

from enrich_assets.enrich.curation.consistency import (
    CAPTION_OBJECTS,
    GRASP_GRIPPER,
    SUBTASK_MOTION,
    VQA_BOXES,
    ConsistencySettings,
    EpisodeEnrichments,
    caption_object_findings,
    check_consistency,
    episode_findings,
    frame_signals,
    grasp_findings,
    motion_findings,
    subtask_spans,
    vqa_box_findings,
)
from enrich_assets.enrich.language.module import Subtask
from enrich_assets.infra.settings import GripperChannel

CAM = "observation.images.front"
VOCAB = ["cube", "bowl", "robot gripper"]
KEYFRAMES = [
    {"camera": CAM, "frame_index": 0, "tech_timestamp": np.float32(0.0)},
    {"camera": CAM, "frame_index": 3, "tech_timestamp": np.float32(0.1)},  # float32 of 0.1
]


def _detections(frame: int, *found: tuple[str, list[float]]) -> dict:
    dets = [{"label": label, "confidence": 0.9, "bbox": box} for label, box in found]
    return {"camera": CAM, "frame_index": frame, "ai_detections": json.dumps(dets)}


def _vqa(t: float, *boxes: tuple[str, list[float]], camera: str = CAM) -> list[dict]:
    answer = {"detections": [{"label": lbl, "bbox_format": "xyxy", "bbox": b} for lbl, b in boxes]}
    common = {"camera": camera, "tech_timestamp": t, "ai_language_style": "vqa"}
    return [
        {**common, "ai_language_role": "user", "ai_language_content": "Where is it?"},
        {**common, "ai_language_role": "assistant", "ai_language_content": json.dumps(answer)},
    ]


def test_vqa_box_fires_when_the_detector_box_of_that_label_is_elsewhere():
    detections = [_detections(3, ("cube", [60, 40, 80, 60]), ("bowl", [10, 10, 30, 30]))]
    # float(np.float32(0.1)) is what the language rows carry for that frame
    vqa = _vqa(float(np.float32(0.1)), ("red cube", [10, 10, 30, 30]))
    [finding] = vqa_box_findings(vqa, KEYFRAMES, detections, VOCAB, 0.3)
    assert finding.check == VQA_BOXES and finding.flagged and finding.value == 0.0
    assert finding.frame_index == 3 and "[60, 40, 80, 60]" in finding.detail
    [result] = check_consistency([finding])
    assert result.rule == VQA_BOXES and not result.passed and "red cube" in result.message


def test_vqa_box_quiet_when_it_matches_and_skips_what_cannot_be_compared():
    detections = [_detections(0, ("cube", [10, 10, 30, 30]), ("cube", [50, 50, 60, 60]))]
    vqa = [
        *_vqa(0.0, ("cube", [11, 10, 30, 31])),  # the best of two cube boxes: IoU ~0.9
        *_vqa(0.0, ("spoon", [0, 0, 5, 5])),  # not in the vocabulary: not compared
        *_vqa(0.05, ("cube", [0, 0, 5, 5])),  # not a keyframe: not compared
        *_vqa(0.0, ("cube", [0, 0, 5, 5]), camera="observation.images.top"),  # no detections
    ]
    [finding] = vqa_box_findings(vqa, KEYFRAMES, detections, VOCAB, 0.3)
    assert not finding.flagged and finding.value > 0.85
    assert check_consistency([finding])[0].passed


def test_vqa_box_not_found_by_the_detector_is_flagged():
    vqa = _vqa(0.0, ("bowl", [10, 10, 30, 30]))
    [finding] = vqa_box_findings(vqa, KEYFRAMES, [_detections(0)], VOCAB, 0.3)
    assert finding.flagged and "no detector box" in finding.detail


def test_caption_object_not_detected_is_named():
    tags = [{"camera": CAM, "frame_index": 0, "ai_caption_objects": ["cube", "bowl", "apple"]}]
    detections = [_detections(0, ("cubes", [0, 0, 4, 4]))]
    findings = caption_object_findings(tags, KEYFRAMES, detections, VOCAB)
    # apple: the detector was not asked for it, so it is not held against it
    assert {(f.subject, f.flagged) for f in findings} == {("cube", False), ("bowl", True)}
    [result] = check_consistency(findings)
    assert result.rule == CAPTION_OBJECTS and not result.passed
    assert "'bowl', not detected" in result.message and "cube" not in result.message.split(":")[0]


def test_caption_objects_all_detected_pass():
    tags = [{"camera": CAM, "frame_index": 3, "ai_caption_objects": ["bowl"]}]
    detections = [_detections(3, ("bowl", [0, 0, 4, 4]))]
    findings = caption_object_findings(tags, KEYFRAMES, detections, VOCAB)
    assert [f.flagged for f in findings] == [False] and check_consistency(findings)[0].passed


T = np.arange(20, dtype=np.float32) / 10  # 2 s at 10 fps
SUBTASKS = [
    Subtask("reach for the cube", 0, 4),
    Subtask("grasp the cube", 5, 9),
    Subtask("move the cube to the bowl", 10, 14),
    Subtask("release the cube", 15, 19),
]


def _gripper(close_at: int, open_at: int) -> np.ndarray:
    g = np.ones(20)
    g[close_at:open_at] = 0.2
    return g


def test_grasp_quiet_when_the_gripper_closes_and_opens_in_the_spans():
    findings = grasp_findings(SUBTASKS, T, _gripper(7, 17), "observation.state[3]", 0.2, 0.1)
    assert [(f.subject, f.flagged) for f in findings] == [
        ("grasp the cube", False),
        ("release the cube", False),
    ]


def test_grasp_fires_where_the_gripper_does_not_move():
    # the gripper closes long before the grasp subtask and never opens
    findings = grasp_findings(SUBTASKS, T, _gripper(1, 20), "observation.state[3]", 0.2, 0.1)
    flagged = {f.subject: f.flagged for f in findings}
    assert flagged == {"grasp the cube": True, "release the cube": True}
    [result] = check_consistency(findings)
    assert (
        result.rule == GRASP_GRIPPER and "observation.state[3] changes by 0.0000" in result.message
    )
    # the window: a close 0.2 s before the grasp span starts is inside ±0.3 s, not ±0.1 s
    early = _gripper(3, 17)
    assert not grasp_findings(SUBTASKS, T, early, "g", 0.3, 0.1)[0].flagged
    assert grasp_findings(SUBTASKS, T, early, "g", 0.1, 0.1)[0].flagged


def test_still_subtask_fires_and_moving_ones_pass():
    state = np.stack([np.linspace(0, 1, 20), np.zeros(20)], axis=1)
    state[10:15, 0] = state[10, 0]  # frozen over "move the cube" (10..14); 15 moves on
    action = state.copy()
    findings = motion_findings(SUBTASKS, T, {"observation.state": state, "action": action}, 0.001)
    flagged = {f.subject: f.flagged for f in findings}
    # "move" spans 10..15 (to the next subtask's first frame), where the state moves again
    assert not any(flagged.values())
    state[10:16, 0] = state[10, 0]
    findings = motion_findings(SUBTASKS, T, {"observation.state": state}, 0.001)
    flagged = {f.subject: f.flagged for f in findings}
    assert flagged == {
        "reach for the cube": False,
        "grasp the cube": False,
        "move the cube to the bowl": True,
        "release the cube": False,
    }
    [result] = check_consistency(findings)
    assert result.rule == SUBTASK_MOTION and "move the cube" in result.message
    assert motion_findings(SUBTASKS, T, {}, 0.001) == []  # no state/action: not compared


def _plan_rows() -> list[dict]:
    rows = [
        {
            "ai_language_style": "subtask",
            "ai_language_content": s.text,
            "tech_timestamp": float(T[s.start]),
        }
        for s in SUBTASKS
    ]
    return [
        *rows,
        {"ai_language_style": "plan", "ai_language_content": "1. x", "tech_timestamp": 0.0},
    ]


def test_episode_findings_reads_catalog_rows_and_the_gripper_channel():
    assert subtask_spans(_plan_rows(), T) == SUBTASKS
    frames = pa.table(
        {
            "timestamp": T,
            "observation.state": pa.array(
                np.stack([np.linspace(0, 1, 20), _gripper(1, 20)], 1).tolist(),
                pa.list_(pa.float32(), 2),
            ),
        }
    )
    signals = frame_signals(frames)
    assert signals["observation.state"].shape == (20, 2) and "action" not in signals
    episode = EpisodeEnrichments(plan=_plan_rows(), timestamps=T, signals=signals)
    settings = ConsistencySettings()
    channel = GripperChannel(column="observation.state", index=1, min_change=0.1)
    findings = episode_findings(episode, VOCAB, settings, channel)
    outcomes = {o.rule: o.passed for o in check_consistency(findings)}
    assert outcomes == {GRASP_GRIPPER: False, SUBTASK_MOTION: True}  # nothing else to compare
    assert {
        o.rule for o in check_consistency(episode_findings(episode, VOCAB, settings, None))
    } == {SUBTASK_MOTION}
    wrong = GripperChannel(column="observation.state", index=6)
    with pytest.raises(ValueError, match=r"observation.state has 2 numbers per frame, index 6"):
        episode_findings(episode, VOCAB, settings, wrong)
    absent = GripperChannel(column="action", index=0)  # the dataset has no action: not compared
    assert all(f.check != GRASP_GRIPPER for f in episode_findings(episode, VOCAB, settings, absent))


def test_finding_rows_fit_the_catalog_schema():
    from enrich_assets.infra.schema import to_table

    finding = vqa_box_findings(
        _vqa(0.0, ("cube", [0, 0, 5, 5])), KEYFRAMES, [_detections(0)], VOCAB, 0.3
    )[0]
    ids = {"dataset_id": "d", "episode_index": 0, "code_version": "", "run_id": "r"}
    row = {**ids, "created_at": None, **finding.row()}
    table = to_table("consistency", [row])
    assert table.column("tech_flagged").to_pylist() == [True]
    assert table.column("frame_index").to_pylist() == [0]


def test_settings_defaults_match_pipeline_yaml():
    from enrich_assets.infra.schema import pipeline_config

    assert ConsistencySettings(**pipeline_config("consistency")) == ConsistencySettings()
