"""Full batches across episodes, with the next batch prepared while the current one runs.

Keyframes from every episode of a batched run flow through one iterator: they are packed into
full batches regardless of episode boundaries, and a background thread decodes and
preprocesses batch k+1 (the `prepare` step) while the model runs batch k (`infer`).

A batch that runs out of GPU memory (in `prepare` or `infer`) is split in half and each half
prepared and run again, recursively down to one image; one image that still runs out of
memory raises. The model counts its splits (`oom_splits`) and times each batch
(`batch_seconds`), which the asset reports.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's `torch.OutOfMemoryError`, or a RuntimeError saying "out of memory" (MPS, cuDNN,
    older torch)."""
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err)


def free_accelerator_memory() -> None:
    """Return cached blocks to the device, so a smaller retry can use them. The failed try's
    tensors are already unreferenced: the retry runs outside the `except` block, whose
    traceback held them (no `gc.collect()`, which costs about 0.5 s with torch loaded)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class _Batch:
    """A batch in flight; `prepared` is dropped (set to None) before a retry frees memory."""

    keys: list[Any]
    images: list[np.ndarray]
    prepared: Any = None
    prepared_ok: bool = False


def _prepared(
    batches: Iterable[tuple[list[K], list[np.ndarray]]], prepare: Callable[[list[np.ndarray]], Any]
) -> Iterator[_Batch]:
    """Prepared batches; one whose `prepare` ran out of memory comes unprepared: it is prepared
    again once the model is idle, and split if that runs out of memory too."""
    for keys, images in batches:
        batch = _Batch(keys, images)
        try:
            batch.prepared, batch.prepared_ok = prepare(images), True
        except Exception as err:
            if not is_out_of_memory(err):
                raise
        yield batch


def _infer_halving(
    batch: _Batch,
    prepare: Callable[[list[np.ndarray]], Any],
    infer: Callable[[Any], Iterable[R]],
    on_split: Callable[[], None] | None,
) -> list[R]:
    """`infer` over the batch; out of memory: halves, each prepared and run the same way."""
    try:
        if not batch.prepared_ok:
            batch.prepared, batch.prepared_ok = prepare(batch.images), True
        results = list(infer(batch.prepared))
    except Exception as err:
        if len(batch.images) == 1 or not is_out_of_memory(err):
            raise
    else:
        return results
    batch.prepared, batch.prepared_ok = None, False
    free_accelerator_memory()
    if on_split is not None:
        on_split()
    middle = (len(batch.images) + 1) // 2
    halves = [
        _Batch(batch.keys[:middle], batch.images[:middle]),
        _Batch(batch.keys[middle:], batch.images[middle:]),
    ]
    results = []
    for half in halves:
        results.extend(_infer_halving(half, prepare, infer, on_split))
    return results


def run_batched(
    items: Iterable[tuple[K, np.ndarray]],
    batch_size: int,
    prepare: Callable[[list[np.ndarray]], Any],
    infer: Callable[[Any], Iterable[R]],
    on_split: Callable[[], None] | None = None,
    on_batch: Callable[[float], None] | None = None,
) -> Iterator[tuple[K, R]]:
    """(key, result) per image, in input order; `prepare` overlaps the previous `infer`.

    A batch that runs out of GPU memory is halved and retried (see the module docstring);
    `on_split` is called once per split, `on_batch` with each batch's seconds in the model
    (its halvings included; waiting for the prepared batch is not).
    """
    batches = prefetch(_prepared(packed_batches(items, batch_size), prepare))
    for batch in batches:
        started = time.perf_counter()
        results = _infer_halving(batch, prepare, infer, on_split)
        if on_batch is not None:
            on_batch(time.perf_counter() - started)
        batch.prepared = None
        yield from zip(batch.keys, results, strict=True)


class BatchStats:
    """`oom_splits`: how many batches this model has halved after running out of memory;
    `batch_seconds`: how long each batch took, in order (both since the model loaded)."""

    oom_splits: int = 0

    def count_oom_split(self) -> None:
        self.oom_splits += 1

    @property
    def batch_seconds(self) -> list[float]:
        return self.__dict__.setdefault("_batch_seconds", [])

    def record_batch(self, seconds: float) -> None:
        self.batch_seconds.append(seconds)


class BatchedModel(BatchStats):
    """A loaded model split into `prepare` (decode side, tensors) and `infer` (the model)."""

    batch_size: int

    def prepare(self, images: list[np.ndarray]) -> Any:
        raise NotImplementedError

    def infer(self, batch: Any) -> list[Any]:
        raise NotImplementedError

    def run(self, items: Iterable[tuple[K, np.ndarray]]) -> Iterator[tuple[K, Any]]:
        """(key, result) for (key, image) pairs from any number of episodes, in full batches."""
        return run_batched(
            items,
            self.batch_size,
            self.prepare,
            self.infer,
            self.count_oom_split,
            self.record_batch,
        )

    def __call__(self, images: list[np.ndarray]) -> list[Any]:
        return [result for _, result in self.run(enumerate(images))]


def image_tensors(images: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """uint8 HxWx3 RGB arrays as uint8 3xHxW tensors on `device` (preprocessing happens there).

    Same-sized images are stacked into one host buffer and copied in one transfer; on CUDA the
    buffer is pinned and the copy does not block this thread.
    """
    import torch

    for i, image in enumerate(images):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"image {i}: expected uint8 HxWx3 RGB, got {image.dtype} {tuple(image.shape)}"
            )
    pinned = device.type == "cuda"
    tensors: list[Any] = [None] * len(images)
    for shape, index in groups_by_shape(images).items():
        host = torch.empty((len(index), *shape), dtype=torch.uint8, pin_memory=pinned)
        np.stack([images[i] for i in index], out=host.numpy())
        batch = host.to(device, non_blocking=pinned).permute(0, 3, 1, 2)
        for j, i in enumerate(index):
            tensors[i] = batch[j]
    return tensors


def groups_by_shape(
    arrays: list[torch.Tensor] | list[np.ndarray],
) -> dict[tuple[int, ...], list[int]]:
    """Indices of same-shaped arrays or tensors, so each group is stacked (and resized) in one
    call."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, array in enumerate(arrays):
        groups.setdefault(tuple(array.shape), []).append(i)
    return groups
