"""Keyframe pixels, decoded once and cached raw, so no later stage decodes video or PNG.

One uint8 `(n, H, W, 3)` `.npy` per episode and camera, named by the sha256 of its bytes
(same frames, same file; written atomically) and read memory-mapped: a later stage copies
its frames out instead of decoding them — 50-68x faster than PNG here, bit-exact, at 3.1x
the bytes (docs/benchmarks/keyframe_cache.md). A keyframe's reference is `<file>#<position>`.
PNG is only for pictures a person looks at (contact sheets); `.png` references written by
older versions of the pipeline still load.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from enrich_assets.store.artifacts import write_artifact

KIND, SUFFIX = "keyframes", ".npy"


def save_keyframes(root: Path, images: Sequence[np.ndarray]) -> list[str]:
    """Cache same-sized uint8 HxWx3 frames (one camera of one episode) in one file; their
    references, in order."""
    if not images:
        return []
    shapes = {tuple(np.shape(image)) for image in images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
        raise ValueError(f"keyframes of one file must share one HxWx3 shape, got {shapes}")
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.stack(images).astype(np.uint8, copy=False))
    rel = write_artifact(root, KIND, buffer.getvalue(), SUFFIX)
    return [f"{rel}#{i}" for i in range(len(images))]


def load_images(root: Path, refs: Sequence[str | Path]) -> list[np.ndarray]:
    """The frames behind `refs`, in order: each cache file is mapped once and its wanted
    frames gathered in one copy."""
    out: list[np.ndarray | None] = [None] * len(refs)
    wanted: dict[str, list[tuple[int, int]]] = {}  # file -> (slot in out, position in file)
    for slot, ref in enumerate(refs):
        file, hashed, position = str(ref).partition("#")
        if hashed:
            wanted.setdefault(file, []).append((slot, _position(root / file, position)))
        else:
            out[slot] = _load_png(root / file)
    for file, picks in wanted.items():
        frames = _mapped(root / file)
        positions = [p for _, p in picks]
        if max(positions) >= len(frames):
            raise ValueError(f"{root / file}: no frame {max(positions)} (holds {len(frames)})")
        for (slot, _), image in zip(picks, frames[positions], strict=True):
            out[slot] = image
    return out  # type: ignore[return-value]


def load_image(root: Path, ref: str | Path) -> np.ndarray:
    return load_images(root, [ref])[0]


def _position(path: Path, text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{path}: keyframe reference needs '#<frame position>', got {text!r}")
    return int(text)


def _mapped(path: Path) -> np.ndarray:
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: keyframe cache file missing") from exc
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: keyframe cache file unreadable ({exc})") from exc
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"{path}: not a keyframe cache ({frames.dtype} {frames.shape})")
    return frames


def _load_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as exc:
        raise FileNotFoundError(f"{path}: keyframe image missing or unreadable ({exc})") from exc


def contact_sheet(images: list[np.ndarray], thumb: int = 96, columns: int = 4) -> np.ndarray:
    """Thumbnails in a grid, for a person to glance at what a run produced."""
    thumbs = []
    for image in images:
        img = Image.fromarray(image)
        img.thumbnail((thumb, thumb))
        canvas = Image.new("RGB", (thumb, thumb))
        canvas.paste(img, ((thumb - img.width) // 2, (thumb - img.height) // 2))
        thumbs.append(np.asarray(canvas))
    rows = [thumbs[i : i + columns] for i in range(0, len(thumbs), columns)]
    blank = np.zeros((thumb, thumb, 3), np.uint8)
    return np.concatenate([np.concatenate(r + [blank] * (columns - len(r)), axis=1) for r in rows])
