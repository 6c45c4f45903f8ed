"""The feeder: every keyframe loaded once, in order, ahead of the model; batched transfers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.vision.batching import image_tensors
from enrich_assets.models.vision.feeder import feed
from enrich_assets.models.vision.image_embedder import load_image_embedder
from enrich_assets.store.images import load_images, save_keyframes


class CountingLoader:
    """Images made from the reference numbers; records every call and its thread."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[list[int]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, refs: list[int]) -> list[np.ndarray]:
        self.calls.append(refs)
        self.threads.add(threading.current_thread().name)
        if self.fail_on in refs:
            raise ValueError(f"frame {self.fail_on}: unreadable")
        return [np.full((2, 2, 3), r, np.uint8) for r in refs]


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_every_item_once_in_order_whatever_the_workers(workers: int) -> None:
    items = [(f"k{i}", i) for i in range(23)]
    load = CountingLoader()
    out = list(feed(items, load, chunk=5, workers=workers))
    assert [k for k, _ in out] == [k for k, _ in items]
    assert [int(image[0, 0, 0]) for _, image in out] == list(range(23))
    assert sorted(r for call in load.calls for r in call) == list(range(23))
    assert [len(c) for c in sorted(load.calls)] == [5, 5, 5, 5, 3]
    on_caller = load.threads == {threading.current_thread().name}
    assert on_caller == (workers == 0)


def test_a_load_error_reaches_the_consumer_and_stopping_early_stops_loading() -> None:
    items = [(i, i) for i in range(40)]
    with pytest.raises(ValueError, match="frame 12: unreadable"):
        list(feed(items, CountingLoader(fail_on=12), chunk=4, workers=2))
    load = CountingLoader()
    stream = feed(items, load, chunk=4, workers=1)
    assert next(stream)[0] == 0
    stream.close()
    assert len(load.calls) <= 3  # the chunk consumed, at most two ahead; never all ten


def test_bad_settings_are_errors() -> None:
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        list(feed([(0, 0)], CountingLoader(), chunk=0))


def test_batched_transfer_keeps_each_image_and_its_shape() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(4, 6, 3), (5, 3, 3)] * 2]
    tensors = image_tensors(images, torch.device("cpu"))
    for image, tensor in zip(images, tensors, strict=True):
        assert tensor.dtype == torch.uint8
        assert torch.equal(tensor, torch.from_numpy(image).permute(2, 0, 1))
    with pytest.raises(ValueError, match=r"image 0: expected uint8 HxWx3 RGB"):
        image_tensors([np.zeros((4, 4), np.uint8)], torch.device("cpu"))


def test_a_model_fed_from_the_cache_matches_one_fed_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(6)]
    refs = save_keyframes(tmp_path, images[:4]) + save_keyframes(tmp_path, images[4:])
    model = load_image_embedder(load_model_spec("embedding", "tiny"), device="cpu")
    items = list(enumerate(refs))
    fed = dict(model.run(feed(items, lambda r: load_images(tmp_path, r), chunk=4, workers=2)))
    direct = model.embed_images(images)
    assert np.abs(np.stack([fed[i] for i in range(6)]) - direct).max() <= 1e-6
