"""Frames stored as encoded images (JPEG/PNG bytes): in HDF5 arrays, SQL rows, TFRecords."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from enrich_assets.datasets.errors import EpisodeError


def image_kind(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    return "encoded"


def decode_image(data: bytes, where: str) -> np.ndarray:
    """uint8 HxWx3 RGB from JPEG/PNG bytes; EpisodeError naming `where` when corrupt."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise EpisodeError(where, f"corrupt image ({exc})") from exc
