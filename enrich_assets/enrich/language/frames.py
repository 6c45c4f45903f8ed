"""Which frames go to a VLM call: sampled at a rate, capped per call, windowed when long.

Frames are addressed by position within the episode (0 = first frame, the same number as
LeRobot's frame_index); the caller supplies a `FrameFetch` that decodes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# (camera, positions) -> one uint8 HxWx3 RGB array per position
FrameFetch = Callable[[str, Sequence[int]], list[np.ndarray]]


def split_windows(positions: Sequence[int], cap: int) -> list[list[int]]:
    """Consecutive windows of at most `cap` positions, as equal in size as possible."""
    if cap <= 0:
        raise ValueError(f"frames per call must be positive, got {cap}")
    if not positions:
        return []
    n = -(-len(positions) // cap)
    return [list(part) for part in np.array_split(np.asarray(positions), n)]


def window_around(timestamps: np.ndarray, position: int, seconds: float, count: int) -> list[int]:
    """Up to `count` distinct frames spread over `seconds` centred on `position`."""
    targets = timestamps[position] + np.linspace(-seconds / 2, seconds / 2, max(count, 1))
    if count <= 1:
        targets = np.array([timestamps[position]])
    return sorted({int(np.abs(timestamps - t).argmin()) for t in targets})


def frames_line(positions: Sequence[int]) -> str:
    return ", ".join(str(p) for p in positions)


def timestamps_line(timestamps: np.ndarray, positions: Sequence[int]) -> str:
    return ", ".join(f"{float(timestamps[p]):.2f}" for p in positions)


def cached(fetch: FrameFetch) -> FrameFetch:
    """A fetch that decodes each (camera, position) once, so modules can share frames."""
    cache: dict[tuple[str, int], np.ndarray] = {}

    def fetch_cached(camera: str, positions: Sequence[int]) -> list[np.ndarray]:
        missing = [p for p in dict.fromkeys(positions) if (camera, p) not in cache]
        if missing:
            for p, image in zip(missing, fetch(camera, missing), strict=True):
                cache[(camera, p)] = image
        return [cache[(camera, p)] for p in positions]

    return fetch_cached


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """`image` shrunk (aspect kept) so its longer side is at most `max_side`; 0 = as is."""
    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return image
    from PIL import Image

    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
