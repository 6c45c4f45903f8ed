"""Golden-set metrics: perfect outputs score 1, known damage drops them by known amounts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from enrich_assets.enrich.curation.golden_build import build_golden_set
from enrich_assets.enrich.curation.golden_metrics import (
    MetricParams,
    iou,
    load_metric_params,
    match_boundaries,
    mentions,
    score_boundaries,
    score_captions,
    score_detections,
    score_golden,
)
from enrich_assets.enrich.curation.golden_set import (
    Boundary,
    GoldenEpisode,
    GoldenItem,
    GoldenSet,
    ReferenceBox,
    ReferenceObject,
    read_truth,
)

FRONT, TOP = "observation.images.front", "observation.images.top"


def _item(frame: int, camera: str) -> GoldenItem:
    return GoldenItem(
        episode_index=0,
        frame_index=frame,
        timestamp=frame / 10,
        camera=camera,
        image=f"frames/{frame}_{camera}.png",
        subtask="reach",
        caption="",
        objects=(
            ReferenceObject("red cube", ("red cube", "red block")),
            ReferenceObject("blue cylinder", ("blue cylinder",)),
        ),
        detections=(
            ReferenceBox("red cube", ("cube", "block"), (0.0, 0.0, 10.0, 10.0)),
            ReferenceBox("gripper", ("robot gripper",), (40.0, 20.0, 60.0, 40.0)),
        ),
    )


GOLDEN = GoldenSet(
    params={},
    build={},
    episodes=(
        GoldenEpisode(
            0,
            "pick up the red cube",
            50,
            ("red cube", "blue cylinder"),
            (Boundary("grasp", 16, 1.6), Boundary("carry", 20, 2.0), Boundary("place", 39, 3.9)),
        ),
    ),
    items=(_item(12, FRONT), _item(25, TOP)),
)


def _detections(boxes_per_item: list[list[tuple[str, list[float]]]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "episode_index": [i.episode_index for i in GOLDEN.items],
            "frame_index": [i.frame_index for i in GOLDEN.items],
            "camera": [i.camera for i in GOLDEN.items],
            "ai_detections": [
                json.dumps([{"label": x, "confidence": 0.9, "bbox": b} for x, b in boxes])
                for boxes in boxes_per_item
            ],
        }
    )


PERFECT = [("cube", [0, 0, 10, 10]), ("robot gripper", [40, 20, 60, 40])]


def _plan(starts: list[float], episode: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "episode_index": [episode] * (len(starts) + 1),
            "ai_language_style": ["task_aug"] + ["subtask"] * len(starts),
            "tech_timestamp": [0.0, *starts],
        }
    )


def _captions(texts: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "episode_index": [0] * len(texts),
            "frame_index": [i.frame_index for i in GOLDEN.items][: len(texts)],
            "camera": [i.camera for i in GOLDEN.items][: len(texts)],
            "ai_caption": texts,
        },
        schema_overrides={"ai_caption": pl.String},
    )


def test_perfect_outputs_score_one() -> None:
    scores = score_golden(
        GOLDEN,
        _detections([PERFECT, PERFECT]),
        _plan([0.0, 1.6, 2.0, 3.9]),
        _captions(["A red cube next to a blue cylinder."] * 2),
    )
    assert scores.metrics == {
        "detection_recall": 1.0,
        "detection_mean_iou": 1.0,
        "boundary_precision": 1.0,
        "boundary_recall": 1.0,
        "boundary_f1": 1.0,
        "caption_object_recall": 1.0,
    }
    assert scores.coverage == {"detections": (2, 2), "boundaries": (1, 1), "captions": (2, 2)}


def test_shifted_boxes_wrong_labels_and_missing_objects() -> None:
    slightly = [("block", [2, 0, 12, 10]), ("robot gripper", [40, 20, 60, 40])]  # IoU 80/120
    far = [("cube", [5, 0, 15, 10]), ("robot gripper", [40, 20, 60, 40])]  # IoU 1/3 < 0.5
    scores = score_detections(GOLDEN, _detections([slightly, far])).metrics
    assert scores["detection_recall"] == pytest.approx(3 / 4)
    assert scores["detection_mean_iou"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    wrong_label = [("bowl", [0, 0, 10, 10]), ("robot gripper", [40, 20, 60, 40])]
    missing = [("robot gripper", [40, 20, 60, 40])]
    scores = score_detections(GOLDEN, _detections([wrong_label, missing])).metrics
    assert scores == {"detection_recall": 0.5, "detection_mean_iou": 1.0}
    one_detection_two_refs = [("cube", [0, 0, 10, 10]), ("cube", [0, 0, 10, 10])]
    scores = score_detections(GOLDEN, _detections([one_detection_two_refs, []])).metrics
    assert scores["detection_recall"] == 1 / 4  # a label must be accepted by the reference


def test_iou_threshold_is_a_parameter() -> None:
    far = [("cube", [5, 0, 15, 10]), ("robot gripper", [40, 20, 60, 40])]
    scores = score_detections(GOLDEN, _detections([far, far]), iou_threshold=0.3).metrics
    assert scores["detection_recall"] == 1.0
    assert scores["detection_mean_iou"] == pytest.approx((1 / 3 + 1) / 2)


def test_wrong_boundaries_lower_f1() -> None:
    late = score_boundaries(GOLDEN, _plan([0.0, 1.6, 2.0, 4.5])).metrics  # 0.6 s off
    assert late == pytest.approx(
        {"boundary_precision": 2 / 3, "boundary_recall": 2 / 3, "boundary_f1": 2 / 3}
    )
    extra = score_boundaries(GOLDEN, _plan([0.0, 1.0, 1.6, 2.0, 3.9])).metrics
    assert extra == pytest.approx(
        {"boundary_precision": 3 / 4, "boundary_recall": 1.0, "boundary_f1": 6 / 7}
    )
    one_subtask = score_boundaries(GOLDEN, _plan([0.0])).metrics
    assert one_subtask == {"boundary_precision": None, "boundary_recall": 0.0, "boundary_f1": 0.0}
    wider = score_boundaries(GOLDEN, _plan([0.0, 1.6, 2.0, 4.5]), tolerance_s=0.6).metrics
    assert wider["boundary_f1"] == pytest.approx(1.0)


def test_boundary_matching_is_one_to_one() -> None:
    assert match_boundaries([1.6, 2.0], [1.8], 0.5) == 1
    assert match_boundaries([1.6, 2.0], [1.5, 1.9], 0.5) == 2
    assert match_boundaries([1.0], [1.5000000001], 0.5) == 1
    assert match_boundaries([1.0], [1.6], 0.5) == 0


def test_caption_mentions_need_colour_and_shape() -> None:
    scores = score_captions(
        GOLDEN, _captions(["Two red blocks on a table.", "A blue cylinder and a red ball."])
    ).metrics
    assert scores["caption_object_recall"] == pytest.approx(2 / 4)
    assert score_captions(GOLDEN, _captions([None, "red cube, blue cylinder"])).metrics == {
        "caption_object_recall": 0.5
    }
    assert mentions("The Red  Cubes", "red cube")
    assert not mentions("a reddish cube", "red cube")
    assert not mentions("a red cuboid", "red cube")


def test_missing_outputs_are_none_not_zero() -> None:
    scores = score_golden(GOLDEN, pl.DataFrame(), pl.DataFrame(), pl.DataFrame())
    assert set(scores.metrics.values()) == {None}
    assert scores.coverage == {"detections": (0, 2), "boundaries": (0, 1), "captions": (0, 2)}
    other_episode = score_boundaries(GOLDEN, _plan([0.0, 1.6], episode=7))
    assert other_episode.metrics["boundary_f1"] is None
    assert other_episode.coverage == {"boundaries": (0, 1)}
    only_first = score_captions(GOLDEN, _captions(["a red cube"]))
    assert only_first.metrics == {"caption_object_recall": 0.5}
    assert only_first.coverage == {"captions": (1, 2)}


def test_mixed_datasets_and_missing_columns_are_refused() -> None:
    twice = pl.concat([_detections([PERFECT, PERFECT])] * 2)
    with pytest.raises(ValueError, match="two rows for"):
        score_detections(GOLDEN, twice)
    with pytest.raises(ValueError, match=r"columns \['ai_caption'\]"):
        score_captions(GOLDEN, _detections([PERFECT, PERFECT]))


def test_iou() -> None:
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0
    assert iou([0, 0, 10, 10], [0, 0, 5, 10]) == 0.5


def test_params_come_from_the_schema() -> None:
    assert load_metric_params() == MetricParams(iou_threshold=0.5, boundary_tolerance_s=0.5)


def test_truth_scored_as_pipeline_output_is_perfect(sample_root: Path) -> None:
    """Outputs written from the truth (boxes, subtasks) and the reference captions score 1."""
    golden, _ = build_golden_set(sample_root)
    truth = {e["episode_index"]: e for e in read_truth(sample_root)["episodes"]}
    keys = {
        "episode_index": [i.episode_index for i in golden.items],
        "frame_index": [i.frame_index for i in golden.items],
        "camera": [i.camera for i in golden.items],
    }
    detections = [
        [
            {"label": ref.labels[-1], "confidence": 1.0, "bbox": list(ref.box)}
            for ref in item.detections
        ]
        for item in golden.items
    ]
    plan = [
        (e.episode_index, "subtask", s["start_frame"] / 10)
        for e in golden.episodes
        for s in truth[e.episode_index]["subtasks"]
    ]
    scores = score_golden(
        golden,
        pl.DataFrame({**keys, "ai_detections": [json.dumps(d) for d in detections]}),
        pl.DataFrame(
            plan, schema=["episode_index", "ai_language_style", "tech_timestamp"], orient="row"
        ),
        pl.DataFrame({**keys, "ai_caption": [i.caption for i in golden.items]}),
        MetricParams(boundary_tolerance_s=1e-6),
    )
    assert set(scores.metrics.values()) == {1.0}
    assert sum(len(i.detections) for i in golden.items) > 2 * len(golden.items)
