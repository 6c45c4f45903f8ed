"""The one identity of an image's pixels: what the catalog stores and the VLM cache keys on."""

from __future__ import annotations

import hashlib

import numpy as np


def pixel_hash(image: np.ndarray) -> str:
    """SHA-256 of dtype, shape and raw pixels (never of an encoding, which varies with
    library versions; shape included, so a transposed black frame is another image)."""
    digest = hashlib.sha256(f"{image.dtype}{image.shape}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()
