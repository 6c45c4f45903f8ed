"""Florence-2 with the tiny random-init model: detection rows in pixels, captions in-process."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from enrich_assets.enrich.language.captions import caption_keyframes
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.enrich.vision.detections import check_detections, detection_rows
from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.vision.florence2 import (
    CONFIDENCE,
    Florence2Captioner,
    Florence2Detector,
    load_captioner,
    load_florence2_detector,
)
from enrich_assets.models.vlm.types import VLMRequest

# an answer as a trained Florence-2 writes it: a phrase, then its box as 4 of 1000 bins per axis
ANSWER = "cup<loc_100><loc_200><loc_500><loc_900>bowl<loc_0><loc_0><loc_999><loc_999>"
SIZES = [(48, 80), (64, 64), (30, 100)]  # (height, width): one batch, three shapes


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]


@pytest.fixture(scope="module")
def detector() -> Florence2Detector:
    return load_florence2_detector(load_model_spec("detection", "tiny-florence"), device="cpu")


def _answers(detector: Florence2Detector, answer: str, n: int) -> list[str]:
    """`answer` as the model's generate() returns it (</s><s>answer</s>), decoded by the real
    tokenizer with its special tokens, as `infer` decodes it."""
    import torch

    tokenizer = detector.processor.tokenizer
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id
    generated = torch.tensor([[eos, bos, *ids, eos]] * n)
    return detector.processor.batch_decode(generated, skip_special_tokens=False)


def _expected_box(height: int, width: int) -> list[float]:
    """The processor's dequantisation: the centre of each of 1000 bins, in whole pixels."""
    bins = [100, 200, 500, 900]
    sides = [width, height, width, height]
    return [float(int((b + 0.5) * side / 1000)) for b, side in zip(bins, sides, strict=True)]


def test_the_tiny_model_runs_and_its_boxes_obey_the_rules(detector) -> None:  # noqa: ANN001
    """Random weights say little; whatever they say must still become valid rows."""
    assert isinstance(detector, Florence2Detector) and detector.task.startswith("<CAPTION_TO")
    found = detector.detect(_images(), ["cup", "bowl"])
    assert len(found) == 3
    outcomes = check_detections(found, SIZES, ["cup", "bowl"])
    assert all(o.passed for o in outcomes), outcomes


def test_answers_become_vocabulary_boxes_in_each_images_pixels(detector) -> None:  # noqa: ANN001
    texts = _answers(detector, ANSWER, len(SIZES))
    found = detector.parse(texts, SIZES, ["Cup", "plate"])  # bowl: not in this vocabulary
    assert found == [
        [{"label": "Cup", "confidence": CONFIDENCE, "bbox": _expected_box(h, w)}] for h, w in SIZES
    ]
    keyframes = [
        {"camera": "cam", "frame_index": i, "tech_height": h, "tech_width": w}
        for i, (h, w) in enumerate(SIZES)
    ]
    rows, per_frame = detection_rows(keyframes, found, {"Cup", "plate"})
    assert [r["ai_detection_count"] for r in rows] == [1, 1, 1]
    outcomes = check_detections(per_frame, SIZES, ["Cup", "plate"])
    assert all(o.passed for o in outcomes), outcomes
    [both] = detector.parse(texts[:1], SIZES[:1], ["cup", "bowl"])
    h, w = SIZES[0]
    assert [d["label"] for d in both] == ["cup", "bowl"]
    assert both[1]["bbox"] == [0.0, 0.0, float(w - 1), float(h - 1)]  # the last bin's centre


def test_open_detection_prompt_gives_the_same_rows(detector) -> None:  # noqa: ANN001
    spec = load_model_spec("detection", "tiny-florence")
    od = Florence2Detector(
        detector.model,
        detector.processor,
        replace(spec, params={**spec.params, "prompt": "od"}),
        "random-init",
        detector.model_id,
    )
    assert od.task == "<OD>" and od.confidence_note.startswith("none")
    h, w = SIZES[2]
    assert od.parse(_answers(od, ANSWER, 1), SIZES[2:], ["cup"]) == [
        [{"label": "cup", "confidence": CONFIDENCE, "bbox": _expected_box(h, w)}]
    ]
    assert len(od.detect(_images()[:1], ["cup"])) == 1  # runs the <OD> prompt through the model


def test_unknown_prompt_mode_is_an_error(detector) -> None:  # noqa: ANN001
    spec = load_model_spec("detection", "tiny-florence")
    bad = replace(spec, params={"prompt": "segment"})
    with pytest.raises(ValueError, match="params.prompt"):
        Florence2Detector(detector.model, detector.processor, bad, "x", "y")


@pytest.fixture(scope="module")
def captioner() -> Florence2Captioner:
    return load_captioner(load_model_spec("caption", "tiny-florence"), device="cpu")


def test_captioner_answers_each_caption_request_with_text(captioner) -> None:  # noqa: ANN001
    images = _images()
    replies = captioner.complete_many([VLMRequest("caption", "x", (i,)) for i in images])
    assert len(replies) == 3
    for reply in replies:
        assert reply.model == "tiny-florence2-caption:random-init" and reply.error is None
        assert reply.text.strip() and "</s>" not in reply.text and "<s>" not in reply.text
        assert reply.output_tokens > 0
    assert captioner.provenance.licence == "none"


def test_captioner_serves_ai_caption_and_refuses_other_requests(captioner) -> None:  # noqa: ANN001
    images = {("cam", 0): _images()[0], ("cam", 5): _images()[1], ("cam", 9): _images()[0]}

    def fetch(camera: str, frames) -> list[np.ndarray]:  # noqa: ANN001
        return [images[(camera, f)] for f in frames]

    keys = list(images)
    made = caption_keyframes(
        keys, fetch, "pick", captioner, LanguageSettings(), {("cam", 9): ("cam", 0)}
    )
    assert [c.text is not None and c.error is None for c in made] == [True, True, True]
    assert made[2].reused_from == ("cam", 0) and made[2].text == made[0].text
    with pytest.raises(ValueError, match="only captions one image"):
        captioner.complete(VLMRequest("vqa", "where?", (images[("cam", 0)],)))
