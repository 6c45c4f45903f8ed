"""The golden set: cut from the sample dataset's truth, written, read back, checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from enrich_assets.datasets.sample.generator import TRUTH_PATH
from enrich_assets.enrich.curation.golden_build import (
    DEMO_EPISODES,
    DEMO_SEED,
    build_golden_set,
    choose_keyframes,
    defect_episodes,
    visible_fractions,
)
from enrich_assets.enrich.curation.golden_set import (
    GOLDEN_DIR,
    GOLDEN_JSON,
    GoldenSetError,
    golden_mismatches,
    load_golden_set,
    read_truth,
    truth_params,
    write_golden_set,
)
from enrich_assets.enrich.episode.keyframes import Keyframe, select_by_count
from enrich_assets.infra.schema import load_yaml


@pytest.fixture(scope="module")
def built(sample_root: Path):  # noqa: ANN201
    return build_golden_set(sample_root)


@pytest.fixture
def written(built, tmp_path: Path) -> Path:  # noqa: ANN001
    golden, images = built
    return write_golden_set(tmp_path / "golden", golden, images)


def test_golden_set_follows_the_truth(built, sample_root: Path) -> None:  # noqa: ANN001
    golden, images = built
    truth = read_truth(sample_root)
    assert golden.params == truth_params(truth)
    skipped = defect_episodes(truth)
    assert len(skipped) == 4  # blurry, dark, black segment, the near-duplicate's copy
    clean = [e for e in truth["episodes"] if e["episode_index"] not in skipped]
    assert [e.episode_index for e in golden.episodes] == [e["episode_index"] for e in clean]
    per_shape = load_yaml("golden.yaml")["build"]["labels"]
    for episode, true in zip(golden.episodes, clean, strict=True):
        assert episode.task == true["task"]
        starts = [(s["name"], s["start_frame"]) for s in true["subtasks"][1:]]
        assert [(b.subtask, b.frame_index) for b in episode.boundaries] == starts
        assert [b.timestamp for b in episode.boundaries] == [
            float(np.float32(f / truth["fps"])) for _, f in starts
        ]
        items = [i for i in golden.items if i.episode_index == true["episode_index"]]
        policy_frames = select_by_count(true["length"], 5)[1:-1]  # interior default keyframes
        assert sorted(i.frame_index for i in items) == policy_frames
        assert len({i.camera for i in items}) == 2  # cameras alternate
        shapes = {o["name"]: o["shape"] for o in true["objects"]}
        for item in items:
            assert images[item.image].shape == (64, 96, 3)
            assert item.subtask == next(
                s["name"]
                for s in true["subtasks"]
                if s["start_frame"] <= item.frame_index and item.frame_index < s["end_frame"]
            )
            boxes = true["boxes"][item.camera]
            names = [r.name for r in item.detections]
            assert "gripper" in names
            for ref in item.detections:
                x0, y0, x1, y1 = boxes[ref.name][item.frame_index]
                assert ref.box == (x0, y0, x1 + 1, y1 + 1)
                assert list(ref.labels) == per_shape[shapes.get(ref.name, "gripper")]
            assert true["target"] in item.caption and true["task"] in item.caption
            for obj in item.objects:
                assert obj.name in item.caption
                assert obj.mentions[0] == obj.name


def test_visible_fraction_counts_what_is_painted_later() -> None:
    boxes = {"red cube": (0, 0, 9, 9), "blue cube": (20, 20, 29, 29), "gripper": (5, 0, 14, 9)}
    seen = visible_fractions(boxes, ["red cube", "blue cube", "gripper"], (40, 40))
    assert seen == {"gripper": 1.0, "blue cube": 1.0, "red cube": 0.5}
    seen = visible_fractions(boxes, ["gripper", "blue cube", "red cube"], (40, 40))
    assert seen["gripper"] == 0.5 and seen["red cube"] == 1.0


def test_keyframes_are_interior_and_cameras_alternate() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    frames = [Keyframe(c, f, f / 10, image) for c in ("a", "b") for f in (0, 5, 10, 15, 19)]
    picked = choose_keyframes(frames, ["a", "b"], 20, 0, 3)
    assert [(k.camera, k.frame_index) for k in picked] == [("a", 5), ("b", 10), ("a", 15)]
    picked = choose_keyframes(frames, ["a", "b"], 20, 1, 3)
    assert [(k.camera, k.frame_index) for k in picked] == [("b", 5), ("a", 10), ("b", 15)]


def test_written_golden_set_reads_back(built, written: Path) -> None:  # noqa: ANN001
    golden, images = built
    assert load_golden_set(written) == golden
    for item in golden.items:
        assert np.array_equal(np.asarray(Image.open(written / item.image)), images[item.image])


def test_rewrite_replaces_and_a_failed_write_keeps_the_old(built, written: Path) -> None:  # noqa: ANN001
    golden, images = built
    (written / "stale.txt").write_text("from the previous build")
    write_golden_set(written, golden, images)
    assert not (written / "stale.txt").exists()
    before = (written / GOLDEN_JSON).read_text()
    missing_frame = {k: v for k, v in images.items() if k != golden.items[-1].image}
    with pytest.raises(KeyError):
        write_golden_set(written, golden, missing_frame)
    assert (written / GOLDEN_JSON).read_text() == before
    assert sorted(p.name for p in written.parent.iterdir()) == ["golden"]  # no leftovers


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: "{not json", "unreadable golden set"),
        (lambda d: {**d, "version": 7}, "version 1"),
        (lambda d: {k: v for k, v in d.items() if k != "episodes"}, "missing fields ['episodes']"),
        (
            lambda d: {**d, "items": [{**d["items"][0], "frame_index": "3"}, *d["items"][1:]]},
            "golden set.items[0].frame_index: expected int",
        ),
        (
            lambda d: {
                **d,
                "items": [
                    {**d["items"][0], "detections": [{"name": "x", "labels": ["cube"], "box": [1]}]}
                ],
            },
            "items[0].detections[0].box: expected 4 values",
        ),
        (lambda d: {**d, "items": d["items"] + d["items"][:1]}, "appears twice"),
    ],
)
def test_malformed_golden_json_names_the_file(written: Path, damage, expected: str) -> None:  # noqa: ANN001
    path = written / GOLDEN_JSON
    damaged = damage(json.loads(path.read_text()))
    path.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    with pytest.raises(GoldenSetError) as err:
        load_golden_set(written)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_missing_frame_is_named(written: Path) -> None:
    golden = load_golden_set(written)
    (written / golden.items[0].image).unlink()
    with pytest.raises(GoldenSetError, match=f"frame {golden.items[0].image} is missing"):
        load_golden_set(written)


def test_golden_set_applies_only_to_its_dataset(built, sample_root: Path, tmp_path: Path) -> None:  # noqa: ANN001
    golden, _ = built
    assert golden_mismatches(golden, sample_root) == []
    assert "sample_truth.json: missing" in golden_mismatches(golden, tmp_path)[0]
    other = tmp_path / "other"
    (other / "meta").mkdir(parents=True)
    truth = json.loads((sample_root / TRUTH_PATH).read_text())
    truth["seed"] = 5
    truth["episodes"][golden.episodes[0].episode_index]["task"] = "something else"
    (other / TRUTH_PATH).write_text(json.dumps(truth))
    found = golden_mismatches(golden, other)
    assert found == [
        "seed: golden set 0, dataset 5",
        f"episode {golden.episodes[0].episode_index}: task, length or objects differ",
    ]


def test_committed_golden_set_is_the_demo_datasets_and_up_to_date(tmp_path: Path) -> None:
    from enrich_assets.datasets.sample.generator import write_sample_dataset

    committed = load_golden_set(GOLDEN_DIR)
    root = write_sample_dataset(tmp_path / "sample", episodes=DEMO_EPISODES, seed=DEMO_SEED)
    assert golden_mismatches(committed, root) == []
    regenerated, _ = build_golden_set(root)
    assert regenerated == committed, "run: python -m enrich_assets.enrich.curation.golden_build"
    assert 20 <= len(committed.items) <= 40
