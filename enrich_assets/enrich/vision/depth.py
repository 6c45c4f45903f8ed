"""ai_depth: float16 depth maps as compressed, content-addressed artifacts, plus their rules.

The artifact is a deterministic .npz (same map, same bytes, same file name); the table keeps
its path, shape, min/median/max, and whether the depth is relative or metric.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from enrich_assets.enrich.rules import RuleOutcome, outcome

ARTIFACT_KIND = "depth"
ARTIFACT_SUFFIX = ".npz"
_MEMBER = "depth.npy"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamp: identical maps give identical bytes


@dataclass(frozen=True)
class DepthStats:
    height: int
    width: int
    min: float
    median: float
    max: float


def encode_depth(depth: np.ndarray) -> bytes:
    """A 2-D map as float16 inside a deflated .npz, readable with np.load."""
    if depth.ndim != 2:
        raise ValueError(f"depth map must be 2-D, got shape {depth.shape}")
    array = io.BytesIO()
    np.lib.format.write_array(array, np.ascontiguousarray(depth, dtype=np.float16))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(_MEMBER, _EPOCH), array.getvalue(), zipfile.ZIP_DEFLATED)
    return out.getvalue()


def decode_depth(data: bytes) -> np.ndarray:
    with np.load(io.BytesIO(data)) as archive:
        return archive[_MEMBER.removesuffix(".npy")]


def depth_stats(depth: np.ndarray) -> DepthStats:
    values = depth.astype(np.float32)
    return DepthStats(
        height=int(depth.shape[0]),
        width=int(depth.shape[1]),
        min=float(values.min()),
        median=float(np.median(values)),
        max=float(values.max()),
    )


def depth_kind(is_metric: bool) -> str:
    return "metric" if is_metric else "relative"


def depth_row(
    keyframe: Mapping[str, Any], depth: np.ndarray, path: str, is_metric: bool
) -> dict[str, Any]:
    """The catalog row of one keyframe's depth map, stored as an artifact at `path`."""
    stats = depth_stats(depth)
    return {
        "camera": keyframe["camera"],
        "frame_index": keyframe["frame_index"],
        "ai_depth_path": path,
        "ai_depth_height": stats.height,
        "ai_depth_width": stats.width,
        "ai_depth_min": stats.min,
        "ai_depth_median": stats.median,
        "ai_depth_max": stats.max,
        "ai_depth_kind": depth_kind(is_metric),
    }


def check_depth(
    maps: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], is_metric: bool
) -> list[RuleOutcome]:
    """Shape of the keyframe, finite, non-negative; relative maps must not be all zero."""
    shape, finite, positive = [], [], []
    for k, (depth, size) in enumerate(zip(maps, sizes, strict=True)):
        if tuple(depth.shape) != tuple(size):
            shape.append(f"keyframe {k}: depth {tuple(depth.shape)} vs image {tuple(size)}")
        values = depth.astype(np.float32)
        if not np.isfinite(values).all():
            finite.append(f"keyframe {k}: {int((~np.isfinite(values)).sum())} non-finite values")
        elif values.min() < 0 or (not is_metric and values.max() <= 0):
            positive.append(f"keyframe {k}: range [{values.min():g}, {values.max():g}]")
    return [
        outcome("depth_shape", shape),
        outcome("depth_finite", finite),
        outcome("depth_positive", positive),
    ]
