"""Pure vision enrichment logic: near-duplicates, detections, depth artifacts, rules, registry,
batching. No model is loaded here."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from enrich_assets.enrich.vision.depth import (
    check_depth,
    decode_depth,
    depth_stats,
    encode_depth,
)
from enrich_assets.enrich.vision.detections import (
    check_detections,
    detections_json,
    load_vocabulary,
    normalize_detections,
)
from enrich_assets.enrich.vision.embedding import check_embeddings, near_duplicate_of
from enrich_assets.infra.pixels import pixel_hash
from enrich_assets.models.registry import load_model_spec, resolve_device, resolve_dtype
from enrich_assets.models.vision.batching import packed_batches, prefetch, run_batched
from enrich_assets.store.artifacts import write_artifact


def unit(*rows: list[float]) -> np.ndarray:
    v = np.array(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def failed(outcomes) -> set[str]:
    return {o.rule for o in outcomes if not o.passed}


# --- embeddings ---------------------------------------------------------------------------


def test_near_duplicates_point_at_the_earlier_representative():
    vectors = unit([1, 0, 0], [0.99, 0.05, 0], [0, 1, 0], [0.98, 0, 0.1], [0.7, 0.7, 0])
    assert near_duplicate_of(vectors, 0.95).tolist() == [-1, 0, -1, 0, -1]
    assert near_duplicate_of(vectors, threshold=0.999).tolist() == [-1, -1, -1, -1, -1]
    assert near_duplicate_of(vectors, threshold=0.5).tolist() == [-1, 0, -1, 0, 0]


def test_embedding_rules_pass_on_good_vectors_and_fail_on_each_fault():
    vectors = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    hashes = ["a", "b", "c"]
    assert failed(check_embeddings(vectors, 3, hashes)) == set()
    assert failed(check_embeddings(vectors, 4, hashes)) == {"embedding_dim"}
    bad = vectors.copy()
    bad[1, 0] = np.nan
    assert failed(check_embeddings(bad, 3, hashes)) == {"embedding_finite"}
    assert failed(check_embeddings(vectors * 2, 3, hashes)) == {"embedding_unit_norm"}
    twins = vectors.copy()
    twins[2] = twins[0]
    result = check_embeddings(twins, 3, hashes)
    assert failed(result) == {"embedding_distinct"}
    assert "keyframes 0 and 2" in next(o.message for o in result if not o.passed)
    assert failed(check_embeddings(twins, 3, ["a", "b", "a"])) == set()  # same pixels: fine


def test_image_hash_is_pixel_identity():
    image = np.zeros((4, 6, 3), np.uint8)
    assert pixel_hash(image) == pixel_hash(image.copy())
    assert pixel_hash(image) != pixel_hash(np.zeros((6, 4, 3), np.uint8))
    other = image.copy()
    other[0, 0, 0] = 1
    assert pixel_hash(image) != pixel_hash(other)


# --- detections ---------------------------------------------------------------------------


def test_normalize_clips_drops_empty_boxes_and_sorts():
    raw = [
        {"label": "cup", "confidence": 0.4, "bbox": [-5.0, 10.0, 30.0, 90.0]},
        {"label": "bowl", "confidence": 0.9, "bbox": [70.0, 5.0, 120.0, 20.0]},
        {"label": "mug", "confidence": 0.8, "bbox": [85.0, 10.0, 95.0, 20.0]},  # right of image
    ]
    out = normalize_detections(raw, height=48, width=80)
    assert out == [
        {"label": "bowl", "confidence": 0.9, "bbox": [70.0, 5.0, 80.0, 20.0]},
        {"label": "cup", "confidence": 0.4, "bbox": [0.0, 10.0, 30.0, 48.0]},
    ]
    assert failed(check_detections([out], [(48, 80)], ["cup", "bowl"])) == set()
    assert detections_json(out).startswith('[{"label":"bowl","confidence":0.9,"bbox":[70.0')


def test_detection_rules_fail_on_each_fault():
    good = {"label": "cup", "confidence": 0.5, "bbox": [1, 2, 10, 20]}
    vocab = ["cup"]
    cases = {
        "detection_bbox_inside": {**good, "bbox": [1, 2, 81, 20]},
        "detection_bbox_ordered": {**good, "bbox": [10, 2, 10, 20]},
        "detection_confidence_range": {**good, "confidence": 1.5},
        "detection_label_in_vocabulary": {**good, "label": "giraffe"},
    }
    assert failed(check_detections([[good]], [(48, 80)], vocab)) == set()
    for rule, bad in cases.items():
        assert failed(check_detections([[good], [bad]], [(48, 80), (48, 80)], vocab)) == {rule}


def test_vocabulary_default_and_per_dataset_override(tmp_path: Path):
    default = load_vocabulary()
    assert {"cube", "bottle", "cup", "mug", "bowl", "table"} <= set(default)
    path = tmp_path / "vocab.yaml"
    path.write_text("default: [cup, bowl]\ndatasets: {g1: [robot gripper]}\n")
    assert load_vocabulary(path=path) == ["cup", "bowl"]
    assert load_vocabulary("g1", path=path) == ["robot gripper"]
    assert load_vocabulary("other", path=path) == ["cup", "bowl"]
    path.write_text("default: [cup, cup]\n")
    with pytest.raises(ValueError, match="unique strings"):
        load_vocabulary(path=path)


# --- depth --------------------------------------------------------------------------------


def test_depth_artifact_round_trips_float16_and_is_deterministic(tmp_path: Path):
    depth = np.linspace(0.5, 3.0, 48 * 80, dtype=np.float32).reshape(48, 80)
    data = encode_depth(depth)
    assert data == encode_depth(depth.copy())  # same map, same bytes, same artifact name
    back = decode_depth(data)
    assert back.dtype == np.float16 and back.shape == (48, 80)
    np.testing.assert_array_equal(back, depth.astype(np.float16))
    assert len(data) < depth.astype(np.float16).nbytes
    first = write_artifact(tmp_path, "depth", data, ".npz")
    assert write_artifact(tmp_path, "depth", encode_depth(depth), ".npz") == first
    stats = depth_stats(back)
    assert (stats.height, stats.width) == (48, 80)
    assert stats.min == pytest.approx(0.5, abs=1e-3) and stats.max == pytest.approx(3.0, abs=2e-3)
    assert stats.median == pytest.approx(1.75, abs=2e-3)


def test_depth_rules_fail_on_each_fault():
    good = np.full((4, 6), 1.0, np.float16)
    assert failed(check_depth([good], [(4, 6)], is_metric=False)) == set()
    assert failed(check_depth([good], [(6, 4)], is_metric=False)) == {"depth_shape"}
    nan = good.copy()
    nan[0, 0] = np.nan
    assert failed(check_depth([nan], [(4, 6)], is_metric=False)) == {"depth_finite"}
    assert failed(check_depth([-good], [(4, 6)], is_metric=True)) == {"depth_positive"}
    zeros = np.zeros((4, 6), np.float16)
    assert failed(check_depth([zeros], [(4, 6)], is_metric=False)) == {"depth_positive"}


# --- registry -----------------------------------------------------------------------------


def test_model_specs_from_the_registry(tmp_path: Path):
    real = load_model_spec("embedding")
    assert (real.family, real.id, real.pretrained) == ("open_clip", "ViT-L-14", "openai")
    assert real.batch_size["cuda"] == 256 and not real.random_init
    assert load_model_spec("detection").family == "owlv2"
    assert load_model_spec("depth").id == "depth-anything/Depth-Anything-V2-Small-hf"
    tiny = load_model_spec("depth", profile="tiny")
    assert tiny.random_init and tiny.config["model"]["patch_size"] == 14
    dino = load_model_spec("embedding", overrides={"name": "dinov2-base", "device": "cpu"})
    assert (dino.family, dino.device) == ("dinov2", "cpu")
    with pytest.raises(ValueError, match="is for task 'embedding', not 'depth'"):
        load_model_spec("depth", overrides={"name": "dinov2-base"})
    with pytest.raises(ValueError, match="unknown fields"):
        load_model_spec("depth", overrides={"colour": "red"})
    with pytest.raises(ValueError, match="no profile"):
        load_model_spec("depth", profile="huge")


def test_device_and_dtype_choice(monkeypatch: pytest.MonkeyPatch):
    import torch

    assert resolve_device("cpu").type == "cpu"
    monkeypatch.setenv("ENRICH_DEVICE", "cpu")
    assert resolve_device("auto").type == "cpu"
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    spec = load_model_spec("embedding")
    assert spec.batch_size_for(torch.device("cuda")) == 256
    assert spec.batch_size_for(torch.device("cpu")) == 16


# --- batching -----------------------------------------------------------------------------


def test_batches_are_packed_across_episodes():
    items = [
        ((episode, frame), np.zeros((2, 2, 3), np.uint8))
        for episode, n in [(0, 3), (1, 4)]
        for frame in range(n)
    ]
    batches = list(packed_batches(items, 3))
    assert [len(keys) for keys, _ in batches] == [3, 3, 1]
    assert batches[1][0] == [(1, 0), (1, 1), (1, 2)]
    with pytest.raises(ValueError, match="batch_size"):
        list(packed_batches(items, 0))


def test_prepare_of_the_next_batch_overlaps_inference():
    events: list[tuple[str, int, float]] = []
    lock = threading.Lock()

    def log(what: str, batch: list[int]) -> None:
        with lock:
            events.append((what, batch[0], time.perf_counter()))

    def prepare(images: list[np.ndarray]) -> list[int]:
        batch = [int(im[0, 0, 0]) for im in images]
        log("prepare-start", batch)
        time.sleep(0.05)
        return batch

    def infer(batch: list[int]) -> list[int]:
        log("infer-start", batch)
        time.sleep(0.05)
        log("infer-end", batch)
        return [b * 10 for b in batch]

    items = [(i, np.full((1, 1, 3), i, np.uint8)) for i in range(8)]
    results = list(run_batched(items, 2, prepare, infer))
    assert results == [(i, i * 10) for i in range(8)]
    at = {(what, batch): t for what, batch, t in events}
    # batch 2 was being prepared while batch 0 was still running
    assert at[("prepare-start", 2)] < at[("infer-end", 0)]


def test_prefetch_reraises_producer_errors_and_stops_early():
    def broken():
        yield 1
        raise RuntimeError("decode failed for frame 7")

    with pytest.raises(RuntimeError, match="frame 7"):
        list(prefetch(broken()))
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for value in prefetch(endless(), depth=2):
        if value == 3:
            break
    assert len(produced) < 10


def test_embedding_rows_mark_near_duplicates_within_one_camera_only() -> None:
    from enrich_assets.enrich.vision.embedding import embedding_rows

    a, b = np.eye(3, dtype=np.float32)[0], np.eye(3, dtype=np.float32)[1]
    rows = [
        {"camera": "top", "frame_index": 0},
        {"camera": "top", "frame_index": 5},
        {"camera": "front", "frame_index": 0},
        {"camera": "front", "frame_index": 5},
    ]
    matrix = np.stack([a, a, a, b])  # front:0 repeats top's picture, but in another camera
    out = embedding_rows(rows, matrix, 0.95)
    assert [r["tech_near_dup_of"] for r in out] == [None, 0, None, None]
    assert [r["tech_is_near_duplicate"] for r in out] == [False, True, False, False]
    assert out[0]["ai_embedding"] == a.tolist() and out[0]["ai_embedding_dim"] == 3


def test_detection_rows_drop_labels_outside_the_vocabulary_and_clip_boxes() -> None:
    from enrich_assets.enrich.vision.detections import detection_rows

    rows = [{"camera": "top", "frame_index": 3, "tech_height": 10, "tech_width": 20}]
    found = [
        [
            {"label": "cube", "confidence": 0.9, "bbox": [-5.0, 1.0, 30.0, 8.0]},
            {"label": "dragon", "confidence": 0.8, "bbox": [1.0, 1.0, 2.0, 2.0]},
        ]
    ]
    out, per_frame = detection_rows(rows, found, {"cube"})
    assert [d["label"] for d in per_frame[0]] == ["cube"]
    assert per_frame[0][0]["bbox"] == [0.0, 1.0, 20.0, 8.0]
    assert out[0]["ai_detection_count"] == 1 and out[0]["frame_index"] == 3


def test_depth_row_carries_the_map_statistics_and_kind() -> None:
    from enrich_assets.enrich.vision.depth import depth_row

    depth = np.array([[1.0, 2.0], [3.0, 10.0]], np.float32)
    row = depth_row({"camera": "top", "frame_index": 7}, depth, "depth/ab/x.npz", False)
    assert row["ai_depth_min"] == 1.0 and row["ai_depth_max"] == 10.0
    assert row["ai_depth_median"] == 2.5 and (row["ai_depth_height"], row["ai_depth_width"]) == (
        2,
        2,
    )
    assert row["ai_depth_kind"] == "relative" and row["ai_depth_path"] == "depth/ab/x.npz"
    assert row["frame_index"] == 7 and row["camera"] == "top"
