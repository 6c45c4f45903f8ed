"""Keyframe pixels, decoded once and kept as PNG artifacts so no later stage decodes video."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from enrich_assets.store.artifacts import write_artifact


def save_image(root: Path, image: np.ndarray) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return write_artifact(root, "keyframes", buffer.getvalue(), ".png")


def load_image(root: Path, relative: str | Path) -> np.ndarray:
    path = root / relative
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
