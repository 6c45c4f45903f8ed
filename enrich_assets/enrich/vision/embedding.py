"""ai_embedding: near-duplicate keyframes within an episode, and the rules embeddings obey.

Near-duplicates let expensive stages (captioning, VLM questions) skip frames that look like
one already handled: each keyframe points at the earlier representative it repeats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from enrich_assets.enrich.rules import RuleOutcome, outcome

NORM_TOLERANCE = 1e-3


def near_duplicate_of(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Per keyframe (in episode order): index of the earlier representative it repeats, or -1.

    A keyframe whose cosine similarity to a representative is above `threshold` repeats the
    most similar one; otherwise it becomes a representative itself. Rows must be L2-normalised.
    """
    result = np.full(len(vectors), -1, dtype=np.int64)
    representatives: list[int] = []
    for i, vector in enumerate(vectors):
        if representatives:
            similarity = vectors[representatives] @ vector
            best = int(np.argmax(similarity))
            if similarity[best] > threshold:
                result[i] = representatives[best]
                continue
        representatives.append(i)
    return result


def embedding_rows(
    rows: Sequence[Mapping[str, Any]], matrix: np.ndarray, threshold: float
) -> list[dict[str, Any]]:
    """One catalog row per keyframe: its vector, and the earlier keyframe of the same camera
    it repeats (near-duplicates are judged within one camera's sequence, in time order)."""
    dup = np.full(len(rows), -1)
    for camera in {r["camera"] for r in rows}:
        idx = [i for i, r in enumerate(rows) if r["camera"] == camera]
        local = near_duplicate_of(matrix[idx], threshold)
        dup[idx] = [idx[j] if j >= 0 else -1 for j in local]
    return [
        {
            "camera": r["camera"],
            "frame_index": r["frame_index"],
            "ai_embedding": matrix[i].tolist(),
            "ai_embedding_dim": int(matrix.shape[1]),
            "tech_near_dup_of": rows[dup[i]]["frame_index"] if dup[i] >= 0 else None,
            "tech_is_near_duplicate": bool(dup[i] >= 0),
        }
        for i, r in enumerate(rows)
    ]


def check_embeddings(
    vectors: np.ndarray, dim: int, image_hashes: Sequence[str]
) -> list[RuleOutcome]:
    """Dimension matches the model, finite, unit norm, distinct images have distinct vectors."""
    if vectors.ndim != 2 or vectors.shape[1] != dim or len(vectors) != len(image_hashes):
        shape = [f"shape {vectors.shape}, expected ({len(image_hashes)}, {dim})"]
        return [outcome("embedding_dim", shape)]
    finite = np.isfinite(vectors).all(axis=1)
    norms = np.linalg.norm(np.where(finite[:, None], vectors, 0), axis=1)
    first_image_for: dict[bytes, tuple[int, str]] = {}
    identical = []
    for i, (vector, pixels) in enumerate(zip(vectors, image_hashes, strict=True)):
        j, other = first_image_for.setdefault(vector.tobytes(), (i, pixels))
        if other != pixels:
            identical.append(f"keyframes {j} and {i} differ but share a bit-identical vector")
    return [
        outcome("embedding_dim", []),
        outcome("embedding_finite", [f"keyframe {i}" for i in np.flatnonzero(~finite)]),
        outcome(
            "embedding_unit_norm",
            [
                f"keyframe {i}: norm {norms[i]:.4f}"
                for i in np.flatnonzero(finite & (np.abs(norms - 1) > NORM_TOLERANCE))
            ],
        ),
        outcome("embedding_distinct", identical),
    ]
