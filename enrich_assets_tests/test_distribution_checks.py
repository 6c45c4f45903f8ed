"""Distribution checks: task objects vs captions and detections, caption variety."""

import json

import polars as pl

from enrich_assets.enrich.curation.distribution_checks import (
    ClassShare,
    DistributionSettings,
    caption_mentions,
    check_caption_variety,
    check_class_shares,
    check_distribution,
    detection_hits,
    report_distribution,
)
from enrich_assets.enrich.rules import Severity
from enrich_assets.infra.schema import pipeline_config

CUBE_TASK = "Pick up the red cube and put it in the bowl"
SPONGE_TASK = "wipe the plate with the sponge"
VOCABULARY = ["cube", "bowl", "plate", "robot gripper"]  # no sponge: the detector never looks


def manifest(tasks):
    rows = [("ds", e, cam, t) for e, t in enumerate(tasks) for cam in ("top", "wrist")]
    return pl.DataFrame(
        rows, schema=["dataset_id", "episode_index", "camera", "tech_task"], orient="row"
    )


def captions(by_episode, reused=()):
    """by_episode: {episode: [caption, ...]}; `reused` (episode, i) rows copy a near-duplicate."""
    rows = [
        ("ds", e, "top", 10 * i, text, 0 if (e, i) in reused else None)
        for e, texts in by_episode.items()
        for i, text in enumerate(texts)
    ]
    columns = ["dataset_id", "episode_index", "camera", "frame_index", "ai_caption"]
    return pl.DataFrame(rows, schema=[*columns, ("ai_caption_reused_from", pl.Int64)], orient="row")


def cube_captions(episode, with_bowl):
    """Five captions, all naming the cube; the first `with_bowl` also the bowl."""
    return [
        f"The gripper closes on the red cube{' above the blue bowls' if i < with_bowl else ''} "
        f"in view {episode}-{i}."
        for i in range(5)
    ]


def sponge_captions(episode):
    return [
        f"A hand wipes a white plate with a yellow sponge, step {episode}-{i}." for i in range(5)
    ]


def test_a_task_object_rarely_captioned_warns_with_exact_figures():
    tasks = manifest([CUBE_TASK, CUBE_TASK, SPONGE_TASK, SPONGE_TASK])
    caps = captions(
        {
            0: [*cube_captions(0, 1), "The bowl is full.", None],  # a copy and a failed call
            1: cube_captions(1, 1),
            2: sponge_captions(2),
            3: sponge_captions(3),
        },
        reused={(0, 5)},
    )
    shares = caption_mentions(tasks, caps)
    assert shares == [
        ClassShare("bowl", 2, 10, 2, 0.2),
        ClassShare("cube", 2, 10, 10, 1.0),
        ClassShare("plate", 2, 10, 10, 1.0),
        ClassShare("sponge", 2, 10, 10, 1.0),
    ]
    outcome = check_class_shares("task_objects_in_captions", shares, 0.3)
    assert (outcome.severity, outcome.passed) == (Severity.WARN, False)
    assert outcome.message == "bowl: 2/10 keyframes (20% < 30%) in 2 episodes whose task names it"


def test_balanced_captions_stay_quiet():
    tasks = manifest([CUBE_TASK, SPONGE_TASK])
    caps = captions({0: cube_captions(0, 2), 1: sponge_captions(1)})
    shares = caption_mentions(tasks, caps)
    assert [(s.object, s.share) for s in shares] == [
        ("bowl", 0.4),
        ("cube", 1.0),
        ("plate", 1.0),
        ("sponge", 1.0),
    ]
    outcome = check_class_shares("task_objects_in_captions", shares, 0.3)
    assert outcome.passed and outcome.message == ""


def detections(by_episode):
    """by_episode: {episode: [[label, ...] per keyframe]}."""
    rows = [
        ("ds", e, json.dumps([{"label": lb, "confidence": 0.5, "bbox": [0, 0, 1, 1]} for lb in kf]))
        for e, frames in by_episode.items()
        for kf in frames
    ]
    return pl.DataFrame(rows, schema=["dataset_id", "episode_index", "ai_detections"], orient="row")


def test_a_task_object_never_detected_warns_and_unasked_classes_are_not_judged():
    tasks = manifest([CUBE_TASK, CUBE_TASK, SPONGE_TASK])
    found = detections(
        {
            0: [["bowl", "robot gripper"], ["bowl"], [], ["bowls"]],
            1: [["bowl"], ["cube"], ["plate"]],  # cube once in 7 keyframes
            2: [["plate"], ["plate", "bowl"], []],
        }
    )
    shares = detection_hits(tasks, found, VOCABULARY)
    assert shares == [
        ClassShare("bowl", 2, 7, 4, 4 / 7),
        ClassShare("cube", 2, 7, 1, 1 / 7),
        ClassShare("plate", 1, 3, 2, 2 / 3),
    ]  # sponge: named by a task, never asked of the detector, so not judged
    outcome = check_class_shares("task_objects_detected", shares, 0.3)
    assert not outcome.passed
    assert outcome.message == "cube: 1/7 keyframes (14% < 30%) in 2 episodes whose task names it"


def test_caption_variety():
    same = captions({0: ["A robot arm near a cube."] * 4, 1: ["Something else entirely."]})
    outcome = check_caption_variety(same, 0.5)
    assert not outcome.passed
    assert outcome.message == (
        "2 distinct captions for 5 keyframes (40% < 50%); most repeated (4x): "
        "'A robot arm near a cube.'"
    )
    assert check_caption_variety(captions({0: cube_captions(0, 0)}), 0.5).passed


def test_check_distribution_runs_every_check_and_settings_match_pipeline_yaml():
    settings = DistributionSettings(**pipeline_config("distribution"))
    assert settings == DistributionSettings()
    tasks = manifest([CUBE_TASK])
    caps = captions({0: cube_captions(0, 0)})
    found = detections({0: [["cube", "bowl"]] * 5})
    names = {o.rule: o.passed for o in check_distribution(tasks, caps, found, VOCABULARY, settings)}
    assert names == {
        "task_objects_in_captions": False,  # bowl in 0 of 5 captions
        "caption_variety": True,
        "task_objects_detected": True,
    }
    assert len(check_distribution(tasks, caps, None, VOCABULARY, settings)) == 2


def test_report_distribution_skips_what_the_tables_lack():
    tables = {
        "episode_manifest": manifest([CUBE_TASK]),
        "ai_caption": captions({0: cube_captions(0, 5)}),
        "ai_detections": detections({0: [["robot gripper"]] * 5}),
    }
    settings = DistributionSettings()
    found = {o.rule: o.passed for o in report_distribution(tables, VOCABULARY, settings)}
    assert found == {
        "task_objects_in_captions": True,
        "caption_variety": True,
        "task_objects_detected": False,  # neither cube nor bowl ever detected
    }
    no_detections = {**tables, "ai_detections": pl.DataFrame()}
    rules = [o.rule for o in report_distribution(no_detections, VOCABULARY, settings)]
    assert rules == ["task_objects_in_captions", "caption_variety"]
    assert report_distribution({**tables, "ai_caption": pl.DataFrame()}, VOCABULARY, settings) == []
    no_manifest = {**tables, "episode_manifest": pl.DataFrame()}
    assert report_distribution(no_manifest, VOCABULARY, settings) == []
