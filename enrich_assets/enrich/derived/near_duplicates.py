"""Near-duplicate keyframes: pairs above a cosine threshold, within and across episodes.

The state that persists between runs is a faiss index over every keyframe plus the pairs
found so far. New episodes are searched against it (new-vs-all, never all-vs-all) and added,
so a run's cost follows the new rows. Groups are the connected components of the pairs;
each member points at the group's earliest keyframe (`dup_of`), and an episode is flagged
when most of its keyframes duplicate one earlier episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enrich_assets.infra.schema import pipeline_config
from enrich_assets.store.vector_index import IndexParams, KeyframeIndex

DEFAULT_THRESHOLD: float = pipeline_config("near_duplicates")["threshold"]  # cosine
EPISODE_DUP_FRACTION = 0.5
STEM = "near_duplicates"  # file names of the saved state: near_duplicates.npz, ...


@dataclass
class NearDuplicateIndex:
    """Every keyframe seen so far (index + row metadata) and the duplicate pairs among them."""

    threshold: float = DEFAULT_THRESHOLD
    params: IndexParams = field(default_factory=IndexParams)
    index: KeyframeIndex | None = None  # None: a new, empty one with `params`
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    episodes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    order: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # earliest = min
    pairs: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.int64))  # ids, a < b
    sims: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = KeyframeIndex(self.params)

    def add(
        self, embeddings: np.ndarray, ids: np.ndarray, episodes: np.ndarray, order: np.ndarray
    ) -> np.ndarray:
        """Index new keyframes and find their duplicates among all rows; returns the new pairs.

        `order` ranks keyframes in time (e.g. episode * 1e6 + frame); `dup_of` points at the
        minimum. Ids must be new: re-running an episode means `remove` of its old ids first.
        """
        ids = np.asarray(ids, np.int64)
        n = len(ids)
        if not (len(embeddings) == len(episodes) == len(order) == n):
            raise ValueError(
                f"near-duplicates: {len(embeddings)} embeddings, {n} ids, "
                f"{len(episodes)} episodes and {len(order)} order keys must match"
            )
        clash = ids[np.isin(ids, self.ids)]
        if clash.size or len(np.unique(ids)) != n:
            raise ValueError(f"near-duplicates: ids already indexed or repeated: {clash[:5]}")
        probes = self.index.add(embeddings, ids)
        query, hit, sim = self.index.range_search(embeddings, self.threshold, probes)
        query_id = ids[query]
        keep = query_id != hit
        a = np.minimum(query_id[keep], hit[keep])
        b = np.maximum(query_id[keep], hit[keep])
        new_pairs, first = np.unique(np.stack([a, b], axis=1), axis=0, return_index=True)
        self.ids = np.concatenate([self.ids, ids])
        self.episodes = np.concatenate([self.episodes, np.asarray(episodes, np.int64)])
        self.order = np.concatenate([self.order, np.asarray(order, np.int64)])
        self.pairs = np.concatenate([self.pairs, new_pairs])
        self.sims = np.concatenate([self.sims, sim[keep][first]])
        return new_pairs

    def remove(self, ids: np.ndarray) -> None:
        """Forget these keyframes and their pairs (before re-adding changed ones)."""
        gone = np.isin(self.ids, ids)
        if not gone.any():
            return
        gone_ids = self.ids[gone]
        self.index.remove(gone_ids)
        self.ids, self.episodes, self.order = (
            self.ids[~gone],
            self.episodes[~gone],
            self.order[~gone],
        )
        live = ~np.isin(self.pairs, gone_ids).any(axis=1)
        self.pairs, self.sims = self.pairs[live], self.sims[live]

    def save(self, directory: Path, **meta: np.ndarray) -> None:
        """Index files and, last, one manifest with the rows, pairs and the caller's `meta`
        (see `KeyframeIndex.save`: a crash leaves the previous state whole)."""
        self.index.save(
            directory,
            STEM,
            threshold=np.float64(self.threshold),
            ids=self.ids,
            episodes=self.episodes,
            order=self.order,
            pairs=self.pairs,
            sims=self.sims,
            **meta,
        )

    @classmethod
    def load(cls, directory: Path) -> tuple[NearDuplicateIndex, dict[str, np.ndarray]]:
        """The saved state and the caller's `meta` saved with it."""
        index, meta = KeyframeIndex.load(directory, STEM)
        own = [meta.pop(k) for k in ("threshold", "ids", "episodes", "order", "pairs", "sims")]
        threshold, ids, episodes, order, pairs, sims = own
        if index.ntotal != len(ids):
            raise ValueError(
                f"{directory}: index holds {index.ntotal} rows but metadata {len(ids)};"
                " rebuild the near-duplicate index"
            )
        nd = cls(float(threshold), index.params, index, ids, episodes, order, pairs, sims)
        return nd, meta


@dataclass(frozen=True)
class KeyframeDuplicates:
    ids: np.ndarray  # (n,) int64, as indexed
    dup_of: np.ndarray  # (n,) int64 id of the group's earliest keyframe; -1 for that one itself
    group: np.ndarray  # (n,) int64 id of the group's earliest keyframe; -1 when no duplicate


@dataclass(frozen=True)
class EpisodeDuplicates:
    episodes: np.ndarray  # (e,) int64
    fraction: np.ndarray  # (e,) float32 most keyframes shared with any one other episode
    dup_of: np.ndarray  # (e,) int64 earlier episode it mostly duplicates; -1 when none


def _pair_positions(nd: NearDuplicateIndex) -> np.ndarray:
    """The pairs as row positions instead of ids."""
    by_id = np.argsort(nd.ids)
    return by_id[np.searchsorted(nd.ids, nd.pairs, sorter=by_id)]


def keyframe_duplicates(nd: NearDuplicateIndex) -> KeyframeDuplicates:
    """Union the pairs into groups; every member points at the group's earliest keyframe."""
    # imported here: scipy costs seconds at import, paid by every step process otherwise
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(nd.ids)
    pos = _pair_positions(nd)
    graph = coo_matrix((np.ones(len(pos), np.int8), (pos[:, 0], pos[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    rank = np.lexsort((nd.ids, nd.order))  # positions, earliest first; ties by id
    _, first = np.unique(component[rank], return_index=True)
    earliest = nd.ids[rank[first]]  # per component
    sizes = np.bincount(component, minlength=len(earliest))
    in_group = sizes[component] > 1
    group = np.where(in_group, earliest[component], -1)
    dup_of = np.where(in_group & (group != nd.ids), group, -1)
    return KeyframeDuplicates(nd.ids.copy(), dup_of, group)


def episode_duplicates(
    nd: NearDuplicateIndex, min_fraction: float = EPISODE_DUP_FRACTION
) -> EpisodeDuplicates:
    """Per episode: the largest share of its keyframes with a duplicate in one other episode.

    Flagged (`dup_of` set) when that share exceeds `min_fraction` and the other episode
    started earlier, so of two copies only the later one is flagged.
    """
    episodes, ep_pos = np.unique(nd.episodes, return_inverse=True)
    counts = np.bincount(ep_pos, minlength=len(episodes))
    first = np.full(len(episodes), np.iinfo(np.int64).max)
    np.minimum.at(first, ep_pos, nd.order)
    pos = _pair_positions(nd)
    both = np.concatenate([pos, pos[:, ::-1]])  # each pair counts for both of its keyframes
    row, other_ep = both[:, 0], ep_pos[both[:, 1]]
    cross = ep_pos[row] != other_ep
    # A keyframe counts once per other episode, however many duplicates it has there.
    row_ep = np.unique(np.stack([row[cross], other_ep[cross]], axis=1), axis=0)
    ep_pair, shared = np.unique(
        np.stack([ep_pos[row_ep[:, 0]], row_ep[:, 1]], axis=1), axis=0, return_counts=True
    )
    share = shared / counts[ep_pair[:, 0]]
    best = np.lexsort((-share, ep_pair[:, 0]))  # by episode, largest share first
    _, first_of_ep = np.unique(ep_pair[best, 0], return_index=True)
    top = best[first_of_ep]
    fraction = np.zeros(len(episodes), np.float32)
    best_other = np.full(len(episodes), -1, np.int64)
    fraction[ep_pair[top, 0]] = share[top]
    best_other[ep_pair[top, 0]] = ep_pair[top, 1]
    flagged = (fraction > min_fraction) & (best_other >= 0)
    flagged &= first[np.maximum(best_other, 0)] < first
    dup_of = np.where(flagged, episodes[np.maximum(best_other, 0)], -1)
    return EpisodeDuplicates(episodes, fraction, dup_of)
