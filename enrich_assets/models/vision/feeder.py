"""One data path from the keyframe cache into the vision models, loading ahead of them.

`feed` reads the keyframes in chunks on `workers` threads (the cache's copy-out of its
memory-mapped arrays and PNG decoding release the GIL), at most `2 * workers` chunks ahead,
and hands them on in order, each once. The model's side of the path is `batching.run_batched`:
its `prepare` (stacking into pinned memory on CUDA, then resize and normalise as tensors on
the device) runs on a background thread while `infer` runs the previous batch. So loading,
preprocessing and the model overlap; bench/feeder.py measures what each stage costs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

K = TypeVar("K")
R = TypeVar("R")


def feed(
    items: Sequence[tuple[K, R]],
    load: Callable[[list[R]], list[np.ndarray]],
    chunk: int = 32,
    workers: int = 1,
) -> Iterator[tuple[K, np.ndarray]]:
    """(key, image) for each (key, reference) of `items`, in order; `load` turns a chunk of
    references into images (one call per chunk). `workers=0` loads on the caller's thread."""
    if chunk < 1 or workers < 0:
        raise ValueError(f"chunk must be >= 1 and workers >= 0, got {chunk}, {workers}")
    chunks = [list(items[i : i + chunk]) for i in range(0, len(items), chunk)]
    if workers == 0:
        for part in chunks:
            yield from zip([k for k, _ in part], load([r for _, r in part]), strict=True)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="feed")
    pending: deque[tuple[list[K], Future[list[np.ndarray]]]] = deque()
    upcoming = iter(chunks)
    try:
        for part in upcoming:
            pending.append(([k for k, _ in part], pool.submit(load, [r for _, r in part])))
            if len(pending) < 2 * workers:
                continue
            keys, images = pending.popleft()
            yield from zip(keys, images.result(), strict=True)
        while pending:
            keys, images = pending.popleft()
            yield from zip(keys, images.result(), strict=True)
    finally:  # a consumer that stops early stops the loading
        pool.shutdown(wait=True, cancel_futures=True)
