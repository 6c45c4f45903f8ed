"""Full batches across episodes, with the next batch prepared while the current one runs.

Keyframes from every episode of a batched run flow through one iterator: they are packed into
full batches regardless of episode boundaries, and a background thread decodes and
preprocesses batch k+1 (the `prepare` step) while the model runs batch k (`infer`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

K = TypeVar("K")
R = TypeVar("R")
T = TypeVar("T")

_DONE = object()


def packed_batches(
    items: Iterable[tuple[K, np.ndarray]], batch_size: int
) -> Iterator[tuple[list[K], list[np.ndarray]]]:
    """(keys, images) lists of `batch_size` (the last may be short), in input order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    iterator = iter(items)
    while chunk := list(islice(iterator, batch_size)):
        keys, images = zip(*chunk, strict=True)
        yield list(keys), list(images)


def prefetch(iterable: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate `iterable` on a background thread, at most `depth` items ahead of the consumer.

    An exception in the producer is raised in the consumer; a consumer that stops early stops
    the producer.
    """
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for item in iterable:
                if stop.is_set():
                    return
                put((True, item))
        except BaseException as err:  # handed to the consumer, which re-raises it
            put((False, err))
        put((True, _DONE))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = buffer.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def run_batched(
    items: Iterable[tuple[K, np.ndarray]],
    batch_size: int,
    prepare: Callable[[list[np.ndarray]], Any],
    infer: Callable[[Any], Iterable[R]],
) -> Iterator[tuple[K, R]]:
    """(key, result) per image, in input order; `prepare` overlaps the previous `infer`."""
    batches = packed_batches(items, batch_size)
    prepared = prefetch((keys, prepare(images)) for keys, images in batches)
    for keys, batch in prepared:
        yield from zip(keys, infer(batch), strict=True)


class BatchedModel:
    """A loaded model split into `prepare` (decode side, tensors) and `infer` (the model)."""

    batch_size: int

    def prepare(self, images: list[np.ndarray]) -> Any:
        raise NotImplementedError

    def infer(self, batch: Any) -> list[Any]:
        raise NotImplementedError

    def run(self, items: Iterable[tuple[K, np.ndarray]]) -> Iterator[tuple[K, Any]]:
        """(key, result) for (key, image) pairs from any number of episodes, in full batches."""
        return run_batched(items, self.batch_size, self.prepare, self.infer)

    def __call__(self, images: list[np.ndarray]) -> list[Any]:
        return [result for _, result in self.run(enumerate(images))]


def image_tensors(images: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """uint8 HxWx3 RGB arrays as uint8 3xHxW tensors on `device` (preprocessing happens there)."""
    import torch

    tensors = []
    for i, image in enumerate(images):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"image {i}: expected uint8 HxWx3 RGB, got {image.dtype} {tuple(image.shape)}"
            )
        array = np.require(image, requirements=["C", "W"])  # torch wants writable memory
        tensors.append(torch.from_numpy(array).to(device).permute(2, 0, 1))
    return tensors


def groups_by_shape(tensors: list[torch.Tensor]) -> dict[tuple[int, ...], list[int]]:
    """Indices of same-shaped tensors, so each group is stacked and resized in one call."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, tensor in enumerate(tensors):
        groups.setdefault(tuple(tensor.shape), []).append(i)
    return groups
