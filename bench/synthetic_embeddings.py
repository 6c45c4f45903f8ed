"""Synthetic keyframe embeddings with planted structure, shaped like CLIP embeddings of robot data.

Scenes are gaussian clusters on the unit sphere around a shared direction (unrelated CLIP
images still have cosine ~0.5), with varying spread (variable density). Each episode films one
scene; its keyframes are members of that cluster. Planted near-duplicates are earlier
keyframes plus tiny noise (cosine ~0.97-0.99), from the same episode (a robot standing still)
or another one; a few episodes are replays, every keyframe copied from an earlier episode.
Generated in chunks, optionally into a .npy memmap, so 1M x 768 never needs two copies in
memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK = 50_000


@dataclass(frozen=True)
class Planted:
    embeddings: np.ndarray  # (n, d) float32, unit rows (may be a memmap)
    cluster: np.ndarray  # (n,) int32 planted scene of each row
    episode: np.ndarray  # (n,) int64 episode of each row (contiguous runs)
    dup_pairs: np.ndarray  # (p, 2) int64 (source row, duplicate row), source < duplicate


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def generate(
    n: int,
    d: int = 768,
    n_clusters: int = 500,
    episode_len: int = 200,
    dup_fraction: float = 0.05,
    replay_fraction: float = 0.01,
    seed: int = 0,
    out: Path | None = None,
) -> Planted:
    """`n` keyframes: `dup_fraction` of them near-duplicates of an earlier row, and
    `replay_fraction` of the episodes near-copies of an earlier episode."""
    rng = np.random.default_rng(seed)
    shared = _unit(rng.standard_normal((1, d)))
    centers = _unit(shared + _unit(rng.standard_normal((n_clusters, d))))
    # Per-dimension spread: members of a scene have cosine ~0.65-0.9 to each other.
    spread = rng.uniform(0.012, 0.025, n_clusters).astype(np.float32)
    sizes = rng.zipf(1.6, n_clusters).clip(1, 50).astype(float)  # some scenes film far more
    scene_p = sizes / sizes.sum()

    n_episodes = -(-n // episode_len)
    episode_scene = rng.choice(n_clusters, n_episodes, p=scene_p)
    episode = np.repeat(np.arange(n_episodes), episode_len)[:n]
    cluster = episode_scene[episode].astype(np.int32)

    if out is None:
        emb = np.empty((n, d), np.float32)
    else:
        emb = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(n, d))
    # Each row's planted source (an earlier row) or -1: replayed episodes copy an earlier
    # episode frame by frame; other duplicates copy a row of their own or any earlier episode.
    source = np.full(n, -1, np.int64)
    for ep in np.flatnonzero(rng.random(n_episodes) < replay_fraction):
        if ep > 0:
            rows = np.arange(ep * episode_len, min((ep + 1) * episode_len, n))
            source[rows] = int(rng.integers(0, ep)) * episode_len + rows - ep * episode_len
    for row in np.flatnonzero((rng.random(n) < dup_fraction) & (source < 0))[1:]:
        ep_start = episode[row] * episode_len
        same_episode = rng.random() < 0.5 and row > ep_start
        source[row] = rng.integers(ep_start if same_episode else 0, row)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        c = cluster[start:stop]
        noise = rng.standard_normal((stop - start, d), dtype=np.float32) * spread[c, None]
        block = _unit(centers[c] + noise)
        for row in np.flatnonzero(source[start:stop] >= 0) + start:
            src = source[row]
            original = block[src - start] if src >= start else emb[src]
            jitter = rng.standard_normal(d).astype(np.float32) * rng.uniform(0.003, 0.008)
            block[row - start] = _unit((original + jitter)[None])[0]
            cluster[row] = cluster[src]
        emb[start:stop] = block
    if out is not None:
        emb.flush()
    dup_rows = np.flatnonzero(source >= 0)
    dup_pairs = np.stack([source[dup_rows], dup_rows], axis=1)
    return Planted(emb, cluster, episode.astype(np.int64), dup_pairs)
