"""GPU out-of-memory recovery, on CPU: the tiny random-init models' real forward is wrapped so
that batches larger than a limit raise `torch.OutOfMemoryError`; the batching halves them
and retries down to one image, with the same results as an un-injected run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.vision import batching
from enrich_assets.models.vision.batching import run_batched
from enrich_assets.models.vision.depth_estimator import load_depth_estimator
from enrich_assets.models.vision.detector import load_detector
from enrich_assets.models.vision.image_embedder import load_image_embedder

LABELS = ["cup", "mug", "red bottle"]


def expected_splits(n: int, limit: int) -> int:
    """Splits that halving a batch of `n` implies when batches above `limit` run out."""
    if n <= limit:
        return 0
    return 1 + expected_splits((n + 1) // 2, limit) + expected_splits(n // 2, limit)


def test_expected_splits_arithmetic():
    assert expected_splits(8, 2) == 3  # 8 -> 4+4 -> 2+2+2+2
    assert expected_splits(8, 1) == 7  # down to single images
    assert expected_splits(3, 2) == 1  # 3 -> 2+1


@contextmanager
def oom_above(module: torch.nn.Module, limit: int) -> Iterator[list[int]]:
    """Wrap `module.forward`: a batch of more than `limit` images raises CUDA's OOM error.
    Yields the batch sizes the model was called with."""
    original = module.forward
    sizes: list[int] = []

    def forward(*args: Any, **kwargs: Any) -> Any:
        pixels = kwargs.get("pixel_values", args[0] if args else None)
        n = int(pixels.shape[0])
        sizes.append(n)
        if n > limit:
            raise torch.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate 2.00 GiB (injected: batch {n} > {limit})"
            )
        return original(*args, **kwargs)

    module.forward = forward  # the instance attribute shadows the class's forward
    try:
        yield sizes
    finally:
        del module.forward


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(11)]


def _embedder():
    model = load_image_embedder(load_model_spec("embedding", "tiny"), device="cpu")
    return model, model.model.visual, model.embed_images


def _detector():
    model = load_detector(load_model_spec("detection", "tiny"), device="cpu")
    return model, model.model, lambda images: model.detect(images, LABELS)


def _depth():
    model = load_depth_estimator(load_model_spec("depth", "tiny"), device="cpu")
    return model, model.model, model.predict


def _assert_same(kind: str, got: Any, want: Any) -> None:
    if kind == "embedding":
        np.testing.assert_allclose(got, want, atol=1e-5)
    elif kind == "depth":
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and g.dtype == w.dtype == np.float16
            np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=2e-3)
    else:
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert [d["label"] for d in g] == [d["label"] for d in w]
            np.testing.assert_allclose(
                [d["confidence"] for d in g], [d["confidence"] for d in w], atol=1e-5
            )
            np.testing.assert_allclose(
                [d["bbox"] for d in g] or np.zeros((0, 4)),
                [d["bbox"] for d in w] or np.zeros((0, 4)),
                atol=1e-3,
            )


BUILDERS = {"embedding": _embedder, "detection": _detector, "depth": _depth}


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_oom_batches_are_halved_down_to_what_fits(kind: str, images: list[np.ndarray]):
    model, module, predict = BUILDERS[kind]()
    model.batch_size = 8  # 11 images: batches of 8 and 3
    want = predict(images)
    assert model.oom_splits == 0

    with oom_above(module, limit=2) as sizes:
        got = predict(images)

    _assert_same(kind, got, want)
    # 8 -> 4+4 -> 2+2+2+2 (3 splits), 3 -> 2+1 (1 split)
    assert model.oom_splits == expected_splits(8, 2) + expected_splits(3, 2) == 4
    assert sizes == [8, 4, 2, 2, 4, 2, 2, 3, 2, 1]

    with oom_above(module, limit=1):  # down to single images: 7 + 2 more splits
        _assert_same(kind, predict(images), want)
    assert model.oom_splits == 4 + expected_splits(8, 1) + expected_splits(3, 1) == 13


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_one_image_that_still_runs_out_of_memory_raises(kind: str, images: list[np.ndarray]):
    model, module, predict = BUILDERS[kind]()
    model.batch_size = 4
    with oom_above(module, limit=0) as sizes, pytest.raises(torch.OutOfMemoryError, match="1 > 0"):
        predict(images[:4])
    assert sizes == [4, 2, 1]  # the first half's first image gives up; nothing else runs
    assert model.oom_splits == 2


def test_runtime_error_saying_out_of_memory_is_recovered_and_other_errors_are_not():
    def prepare(images: list[np.ndarray]) -> list[int]:
        return [int(im[0, 0, 0]) for im in images]

    def infer(batch: list[int]) -> list[int]:
        if len(batch) > 1:
            raise RuntimeError("CUDA error: out of memory")
        return [b * 10 for b in batch]

    splits: list[int] = []
    items = [(i, np.full((1, 1, 3), i, np.uint8)) for i in range(4)]
    out = list(run_batched(items, 4, prepare, infer, lambda: splits.append(1)))
    assert out == [(i, i * 10) for i in range(4)] and len(splits) == 3

    def broken(batch: list[int]) -> list[int]:
        raise RuntimeError("CUDA error: device-side assert triggered")

    with pytest.raises(RuntimeError, match="device-side assert"):
        list(run_batched(items, 4, prepare, broken, lambda: splits.append(1)))
    assert len(splits) == 3  # not split


def test_prepare_that_runs_out_of_memory_is_split_too():
    calls: list[int] = []

    def prepare(images: list[np.ndarray]) -> list[int]:
        calls.append(len(images))
        if len(images) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (preprocessing)")
        return [int(im[0, 0, 0]) for im in images]

    items = [(i, np.full((1, 1, 3), i, np.uint8)) for i in range(8)]
    splits: list[int] = []
    out = list(run_batched(items, 8, prepare, lambda b: b, lambda: splits.append(1)))
    assert out == [(i, i) for i in range(8)]
    # background try, a second try once the model is idle, then halves
    assert calls == [8, 8, 4, 2, 2, 4, 2, 2] and len(splits) == 3


def test_the_cuda_cache_is_emptied_between_tries(monkeypatch: pytest.MonkeyPatch):
    emptied: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))

    def infer(batch: list[np.ndarray]) -> list[int]:
        if len(batch) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return [0]

    items = [(i, np.zeros((1, 1, 3), np.uint8)) for i in range(2)]
    assert len(list(run_batched(items, 2, lambda b: b, infer))) == 2
    assert emptied == [1]
    assert batching.is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not batching.is_out_of_memory(ValueError("out of memory"))
