"""The vision models, built tiny and random-init from configs, through the real code paths:
preprocessing, batching across episodes, inference, post-processing, the check rules, and
loading saved weights from local folders/checkpoints (no download anywhere)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from enrich_assets.enrich.vision.depth import check_depth, decode_depth, encode_depth
from enrich_assets.enrich.vision.detections import check_detections, normalize_detections
from enrich_assets.enrich.vision.embedding import check_embeddings
from enrich_assets.infra.pixels import pixel_hash
from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.vision.depth_estimator import DepthEstimator, load_depth_estimator
from enrich_assets.models.vision.detector import Detector, load_detector
from enrich_assets.models.vision.image_embedder import ImageEmbedder, load_image_embedder
from enrich_assets.models.weights import MissingWeightsError

LABELS = ["cup", "mug", "red bottle"]


def failed(outcomes) -> set[str]:
    return {o.rule for o in outcomes if not o.passed}


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = [(48, 80), (48, 80), (64, 64)]
    return [rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in shapes]


@pytest.fixture(scope="module")
def clip() -> ImageEmbedder:
    return load_image_embedder(load_model_spec("embedding", "tiny"), device="cpu")


@pytest.fixture(scope="module")
def owlv2() -> Detector:
    return load_detector(load_model_spec("detection", "tiny"), device="cpu")


@pytest.fixture(scope="module")
def depth() -> DepthEstimator:
    return load_depth_estimator(load_model_spec("depth", "tiny"), device="cpu")


@pytest.fixture
def offline_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


# --- embeddings ---------------------------------------------------------------------------


def test_clip_embeddings_are_unit_vectors_that_pass_the_rules(clip, images):
    vectors = clip.embed_images(images)
    assert vectors.shape == (3, clip.dim) == (3, 32) and vectors.dtype == np.float32
    assert failed(check_embeddings(vectors, clip.dim, [pixel_hash(i) for i in images])) == set()
    assert clip.model_id == "tiny-clip:random-init"
    assert clip.provenance.model_revision == "random-init"
    assert clip.provenance.preprocessing == "torch-shortest-bicubic-64x64:v1"
    # the same pixels give the same vector; the rule accepts that only for identical pixels
    twice = clip.embed_images([images[0], images[0].copy()])
    np.testing.assert_allclose(twice[0], twice[1], atol=1e-6)
    texts = clip.embed_texts(["a red cup", "a robot gripper"])
    assert texts.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)


def test_clip_tensor_preprocessing_matches_open_clip_transform(clip, images):
    import open_clip
    import torch
    from PIL import Image

    cfg = open_clip.get_model_preprocess_cfg(clip.model)
    reference = open_clip.image_transform(
        cfg["size"],
        is_train=False,
        mean=cfg["mean"],
        std=cfg["std"],
        resize_mode=cfg["resize_mode"],
        interpolation=cfg["interpolation"],
    )
    ours = clip.prepare(images)
    theirs = torch.stack([reference(Image.fromarray(i)) for i in images])
    assert ours.shape == theirs.shape
    # PIL and torch bicubic antialiasing differ slightly; normalised units (~1 = one std)
    assert (ours - theirs).abs().mean() < 0.01


def test_batches_across_episodes_give_the_same_vectors_as_one_by_one(clip, images):
    items = [((episode, k), image) for episode in (3, 7) for k, image in enumerate(images)]
    keyed = dict(clip.run(items))  # batch size 4 packs both episodes together
    assert list(keyed) == [key for key, _ in items]
    alone = clip.embed_images(images[2:3])[0]
    np.testing.assert_allclose(keyed[(7, 2)], alone, atol=1e-5)


def test_dinov2_is_the_second_embedding_family(images):
    spec = load_model_spec("embedding", "tiny", {"name": "tiny-dinov2"})
    dino = load_image_embedder(spec, device="cpu")
    vectors = dino.embed_images(images)
    assert vectors.shape == (3, 32)
    assert failed(check_embeddings(vectors, dino.dim, [pixel_hash(i) for i in images])) == set()
    with pytest.raises(NotImplementedError, match="no text tower"):
        dino.embed_texts(["cup"])


def test_open_clip_loads_a_local_checkpoint_safely(clip, images, tmp_path: Path):
    import torch
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in clip.model.state_dict().items()}
    for checkpoint in (tmp_path / "tiny.safetensors", tmp_path / "tiny.pt"):
        if checkpoint.suffix == ".pt":
            torch.save(state, checkpoint)
        else:
            save_file(state, str(checkpoint))
        spec = dataclasses.replace(
            load_model_spec("embedding", "tiny"), random_init=False, pretrained=str(checkpoint)
        )
        loaded = load_image_embedder(spec, device="cpu")
        assert loaded.model_id == f"tiny-clip/{checkpoint.name}"
        assert loaded.provenance.model_revision.startswith("sha256:")
        np.testing.assert_allclose(
            loaded.embed_images(images), clip.embed_images(images), atol=1e-5
        )


def test_missing_open_clip_weights_say_where_and_how(offline_empty_cache: Path):
    spec = load_model_spec("embedding", overrides={"name": "clip-vit-b-32"})
    with pytest.raises(MissingWeightsError) as caught:
        load_image_embedder(spec, device="cpu")
    message = str(caught.value)
    assert "'clip-vit-b-32'" in message and "ViT-B-32/laion2b_s34b_b79k" in message
    assert str(offline_empty_cache) in message and "HF_HUB_OFFLINE=1" in message
    assert "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message
    assert "pretrained" in message
    missing_file = dataclasses.replace(spec, pretrained="/nowhere/ViT-B-32.safetensors")
    with pytest.raises(MissingWeightsError, match="file /nowhere/ViT-B-32.safetensors"):
        load_image_embedder(missing_file, device="cpu")


# --- detection ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny-owlv2", "tiny-grounding-dino"])
def test_detections_are_normalised_and_pass_the_rules(name, owlv2, images):
    detector = (
        owlv2
        if name == "tiny-owlv2"
        else load_detector(load_model_spec("detection", "tiny", {"name": name}), device="cpu")
    )
    raw = detector.detect(images, LABELS)
    assert len(raw) == len(images)
    assert all(0 < len(found) <= detector.max_detections for found in raw)
    assert {d["label"] for found in raw for d in found} <= set(LABELS)
    sizes = [i.shape[:2] for i in images]
    clean = [normalize_detections(found, *size) for found, size in zip(raw, sizes, strict=True)]
    assert any(clean)
    assert failed(check_detections(clean, sizes, LABELS)) == set()
    assert failed(check_detections(clean, sizes, LABELS[:1])) <= {"detection_label_in_vocabulary"}
    assert detector.model_id == f"{name}:random-init"


def test_detector_loads_from_a_saved_folder(owlv2, images, tmp_path: Path):
    owlv2.model.save_pretrained(tmp_path)
    owlv2.processor.save_pretrained(tmp_path)
    spec = dataclasses.replace(
        load_model_spec("detection", "tiny"), id=str(tmp_path), random_init=False
    )
    loaded = load_detector(spec, device="cpu")
    assert loaded.model_id == str(tmp_path)
    assert loaded.provenance.model_revision.startswith("sha256:")
    assert loaded.detect(images[:1], LABELS) == owlv2.detect(images[:1], LABELS)


# --- depth --------------------------------------------------------------------------------


def test_depth_maps_match_each_image_and_pass_the_rules(depth, images):
    maps = depth.predict(images)
    sizes = [i.shape[:2] for i in images]
    assert [m.shape for m in maps] == sizes
    assert all(m.dtype == np.float16 for m in maps)
    assert not depth.is_metric and depth.scale is None
    assert failed(check_depth(maps, sizes, depth.is_metric)) == set()
    np.testing.assert_array_equal(decode_depth(encode_depth(maps[2])), maps[2])
    assert failed(check_depth(maps, sizes[::-1], depth.is_metric)) == {"depth_shape"}


def test_depth_loads_from_a_saved_folder_with_a_scale(depth, images, tmp_path: Path):
    depth.model.save_pretrained(tmp_path)
    depth.processor.save_pretrained(tmp_path)
    base = load_model_spec("depth", "tiny")
    spec = dataclasses.replace(base, id=str(tmp_path), random_init=False, params={"scale": 2.0})
    loaded = load_depth_estimator(spec, device="cpu")
    assert loaded.provenance.model_revision.startswith("sha256:") and loaded.scale == 2.0
    expected = depth.predict(images[:1])[0].astype(np.float32) * 2
    np.testing.assert_allclose(loaded.predict(images[:1])[0], expected, rtol=2e-3)


def test_missing_transformers_weights_say_where_and_how(offline_empty_cache: Path):
    spec = load_model_spec("depth")
    with pytest.raises(MissingWeightsError) as caught:
        load_depth_estimator(spec, device="cpu")
    message = str(caught.value)
    assert "'depth-anything-v2-small'" in message
    assert str(offline_empty_cache) in message and "HF_HUB_OFFLINE=1" in message
    assert "hf download depth-anything/Depth-Anything-V2-Small-hf" in message
    folder = dataclasses.replace(spec, id="/nowhere/depth-model")
    with pytest.raises(MissingWeightsError, match="local folder /nowhere/depth-model"):
        load_depth_estimator(folder, device="cpu")
