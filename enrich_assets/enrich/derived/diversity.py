"""Episode diversity and repeated demonstrations.

Diversity is the mean pairwise cosine distance of an episode's keyframe embeddings, computed
from the sum of its unit vectors (no pairwise matrix): for n unit rows with sum s, the mean
cosine over distinct pairs is (|s|^2 - n) / (n (n - 1)).

Two demonstrations repeat each other when they look alike AND move alike: candidates are the
nearest episodes by mean embedding or by resampled trajectory, scored by a mix of vision
cosine and a banded dynamic-time-warping distance on standardised state/action sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from enrich_assets.store.vector_index import chunks, unit_rows

TRAJECTORY_LENGTH = 32  # steps every state/action sequence is resampled to
DTW_BAND = 4  # Sakoe-Chiba band: how far (in resampled steps) one demo may lead the other
DTW_BATCH = 2048  # pairs warped at once; bounds the cost tensor to ~30 MB at 14 dims


def episode_sums(
    embeddings: np.ndarray, episodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(episode ids, sum of unit keyframe embeddings per episode, keyframe counts)."""
    # imported here: scipy costs seconds at import, paid by every step process otherwise
    from scipy.sparse import coo_matrix

    ids, pos = np.unique(np.asarray(episodes), return_inverse=True)
    sums = np.zeros((len(ids), embeddings.shape[1]), np.float64)
    for part in chunks(len(embeddings)):
        rows = pos[part]
        onehot = coo_matrix(
            (np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(len(ids), len(rows))
        )
        sums += onehot.tocsr() @ unit_rows(embeddings[part])
    return ids, sums, np.bincount(pos, minlength=len(ids))


def episode_diversity(
    embeddings: np.ndarray, episodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(episode ids, mean pairwise cosine distance); NaN for an episode with one keyframe."""
    ids, sums, n = episode_sums(embeddings, episodes)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_cos = ((sums**2).sum(axis=1) - n) / (n * (n - 1.0))
    return ids, np.where(n > 1, 1.0 - mean_cos, np.nan).astype(np.float32)


def percentile(values: np.ndarray) -> np.ndarray:
    """Dataset-relative rank in [0, 100] (0 = lowest); NaN stays NaN."""
    from scipy.stats import rankdata

    finite = np.isfinite(values)
    out = np.full(len(values), np.nan, np.float32)
    ranks = rankdata(values[finite])  # ties share their average rank
    out[finite] = 100.0 * (ranks - 1) / max(finite.sum() - 1, 1)
    return out


def trajectory_features(
    sequences: Sequence[np.ndarray], length: int = TRAJECTORY_LENGTH
) -> np.ndarray:
    """(episodes, length, dims): each (T, dims) state/action sequence resampled linearly to
    `length` steps, each dimension standardised over the whole dataset."""
    dims = {np.shape(s)[1] if np.ndim(s) == 2 else None for s in sequences}
    if len(dims) != 1 or None in dims:
        raise ValueError(f"trajectories: expected (T, dims) arrays of one width, got {dims}")
    out = np.empty((len(sequences), length, dims.pop()), np.float32)
    for i, seq in enumerate(sequences):
        seq = np.asarray(seq, np.float64)
        if len(seq) == 0 or not np.isfinite(seq).all():
            raise ValueError(f"trajectories: episode position {i} is empty or not finite")
        t = np.linspace(0, len(seq) - 1, length)
        lo = np.floor(t).astype(int)
        hi = np.minimum(lo + 1, len(seq) - 1)
        w = (t - lo)[:, None]
        out[i] = (1 - w) * seq[lo] + w * seq[hi]
    std = out.std(axis=(0, 1))
    return (out - out.mean(axis=(0, 1))) / np.where(std > 0, std, 1.0)


def dtw_distances(a: np.ndarray, b: np.ndarray, band: int = DTW_BAND) -> np.ndarray:
    """Banded DTW between a[i] and b[i] (both (pairs, L, dims)), per step of the path.

    The recurrence runs over the band's cells in Python, each cell vectorised over pairs.
    """
    pairs, length, _ = a.shape
    out = np.empty(pairs, np.float32)
    for part in chunks(pairs, DTW_BATCH):
        cost = np.linalg.norm(a[part, :, None] - b[part, None, :], axis=-1)
        acc = np.full((len(cost), length + 1, length + 1), np.inf, np.float32)
        acc[:, 0, 0] = 0
        for i in range(1, length + 1):
            for j in range(max(1, i - band), min(length, i + band) + 1):
                best = np.minimum(
                    np.minimum(acc[:, i - 1, j - 1], acc[:, i - 1, j]), acc[:, i, j - 1]
                )
                acc[:, i, j] = cost[:, i - 1, j - 1] + best
        out[part] = acc[:, length, length] / (2 * length)
    return out


@dataclass(frozen=True)
class EpisodePairs:
    """Candidate repeated demonstrations, most similar first (positions into the inputs)."""

    a: np.ndarray  # (p,) int64
    b: np.ndarray  # (p,) int64, a < b
    vision: np.ndarray  # (p,) float32 cosine of mean keyframe embeddings
    dtw: np.ndarray  # (p,) float32 per-step DTW distance, standardised units
    similarity: np.ndarray  # (p,) float32 in [0, 1]-ish: higher repeats more


def repeated_demonstrations(
    episode_vectors: np.ndarray,
    trajectories: np.ndarray,
    k: int = 10,
    vision_weight: float = 0.5,
) -> EpisodePairs:
    """Score each episode against its k nearest by vision and by trajectory.

    `episode_vectors` (e, d): e.g. the sums from `episode_sums`; `trajectories` (e, L, dims)
    from `trajectory_features`. Similarity = w * vision cosine + (1 - w) / (1 + DTW).
    """
    e = len(episode_vectors)
    if len(trajectories) != e:
        raise ValueError(
            f"repeated demonstrations: {e} episode vectors, {len(trajectories)} trajectories"
        )
    vectors = unit_rows(episode_vectors, "episode vectors")
    flat = np.ascontiguousarray(trajectories.reshape(e, -1), np.float32)
    candidates = [_knn_pairs(faiss.IndexFlatIP(vectors.shape[1]), vectors, k)]
    candidates.append(_knn_pairs(faiss.IndexFlatL2(flat.shape[1]), flat, k))
    pairs = np.unique(np.concatenate(candidates), axis=0)
    a, b = pairs[:, 0], pairs[:, 1]
    vision = np.einsum("ij,ij->i", vectors[a], vectors[b])
    dtw = dtw_distances(trajectories[a], trajectories[b])
    similarity = vision_weight * vision + (1 - vision_weight) / (1 + dtw)
    best = np.argsort(-similarity, kind="stable")
    return EpisodePairs(a[best], b[best], vision[best], dtw[best], similarity[best])


def _knn_pairs(index: faiss.Index, x: np.ndarray, k: int) -> np.ndarray:
    """Unordered (i, j) pairs, i < j, linking each row to its k nearest others."""
    index.add(x)
    _, nn = index.search(x, min(k + 1, len(x)))
    i = np.repeat(np.arange(len(x)), nn.shape[1])
    j = nn.ravel()
    keep = (j >= 0) & (j != i)
    return np.stack([np.minimum(i, j)[keep], np.maximum(i, j)[keep]], axis=1)


def most_similar_episode(pairs: EpisodePairs, n_episodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per episode position: its most similar candidate (-1 when none) and that similarity.
    The pairs come most similar first, so an episode's first pair is its best (ties: the
    earlier pair)."""
    me = np.concatenate([pairs.a, pairs.b])
    other = np.concatenate([pairs.b, pairs.a])
    score = np.concatenate([pairs.similarity, pairs.similarity])
    rank = np.tile(np.arange(len(pairs.a)), 2)
    best = np.lexsort((rank, me))
    _, first = np.unique(me[best], return_index=True)
    top = best[first]
    partner = np.full(n_episodes, -1, np.int64)
    similarity = np.full(n_episodes, np.nan, np.float32)
    partner[me[top]], similarity[me[top]] = other[top], score[top]
    return partner, similarity
