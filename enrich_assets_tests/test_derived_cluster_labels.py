"""Incremental cluster labels without Dagster: what a run keeps, assigns, refits and reads."""

from __future__ import annotations

import numpy as np
import polars as pl

from enrich_assets.enrich.derived.cluster_labels import (
    cluster_sizes,
    label_keyframes,
    labels_metadata,
    refit_reason,
)
from enrich_assets.enrich.derived.clusters import ClusterConfig
from enrich_assets.enrich.derived.index_plan import KEYS

D = 32
CONFIG = ClusterConfig(k=3, dims=8)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


CENTRES = _unit(np.random.default_rng(0).standard_normal((3, D)))


def keyframes(
    episodes: range, seed: int, centres: np.ndarray = CENTRES
) -> tuple[pl.DataFrame, np.ndarray]:
    """10 keyframes per episode, episode e drawn around centre e % 3; keys + their vectors."""
    rng = np.random.default_rng(seed)
    ep = np.repeat(np.asarray(episodes), 10)
    x = _unit(centres[ep % len(centres)] + rng.standard_normal((len(ep), D)) * 0.05)
    keys = pl.DataFrame(
        {
            "episode_index": ep,
            "camera": ["top"] * len(ep),
            "frame_index": np.tile(np.arange(10), len(episodes)),
        }
    )
    return keys, x


class Reader:
    """The embeddings a run asks for, counted (the asset reads them from the catalog)."""

    def __init__(self, keys: pl.DataFrame, x: np.ndarray) -> None:
        self.lookup = {k: v for k, v in zip(keys.iter_rows(), x, strict=True)}
        self.rows_read = 0

    def __call__(self, wanted: pl.DataFrame) -> np.ndarray:
        self.rows_read += wanted.height
        return np.stack([self.lookup[k] for k in wanted.select(KEYS).iter_rows()])


def _reader(episodes: range, seed: int = 1) -> tuple[pl.DataFrame, Reader]:
    keys, x = keyframes(episodes, seed)
    return keys, Reader(keys, x)


def test_refit_reasons() -> None:
    first = label_keyframes(None, pl.DataFrame(), *_reader(range(6)), "clip-a", False, CONFIG)
    assert refit_reason(first.model, "clip-a", True) == "requested"
    assert refit_reason(None, "clip-a", False) == "no saved model"
    assert refit_reason(first.model, "clip-b", False) == "embedding config changed"
    assert refit_reason(first.model, "clip-a", False) == ""


def test_first_run_fits_and_labels_every_keyframe_by_its_centre() -> None:
    keys, reader = _reader(range(6))
    run = label_keyframes(None, pl.DataFrame(), keys, reader, "clip-a", False, CONFIG)
    assert run.refit == "no saved model" and run.assigned == 60 and run.drift is None
    assert run.frame.height == 60 and run.frame["ai_cluster_version"].unique().to_list() == [
        run.model.version
    ]
    by_episode = run.frame.group_by("episode_index").agg(pl.col("ai_cluster_id").n_unique())
    assert by_episode["ai_cluster_id"].to_list() == [1] * 6  # an episode sits in one cluster
    sizes = cluster_sizes(run)
    assert sorted(sizes.tolist()) == [20, 20, 20]


def test_new_episodes_are_assigned_and_only_they_are_read() -> None:
    keys, reader = _reader(range(6))
    first = label_keyframes(None, pl.DataFrame(), keys, reader, "clip-a", False, CONFIG)
    grown, x = keyframes(range(9), 1)
    reader = Reader(grown, x)
    second = label_keyframes(first.model, first.frame, grown, reader, "clip-a", False, CONFIG)
    assert second.refit == "" and second.model is first.model
    assert second.assigned == 30 and reader.rows_read == 30
    assert second.drift is not None and second.drift < CONFIG.drift_ratio
    old = second.frame.filter(pl.col("episode_index") < 6)
    assert old.equals(first.frame)  # kept as they were
    # episode 6 shares episode 0's centre, so its cluster
    label = dict(
        second.frame.group_by("episode_index").agg(pl.col("ai_cluster_id").first()).iter_rows()
    )
    assert label[6] == label[0] and label[7] == label[1] and label[8] == label[2]


def test_nothing_new_reads_nothing() -> None:
    keys, reader = _reader(range(6))
    first = label_keyframes(None, pl.DataFrame(), keys, reader, "clip-a", False, CONFIG)
    reader.rows_read = 0
    again = label_keyframes(first.model, first.frame, keys, reader, "clip-a", False, CONFIG)
    assert reader.rows_read == 0 and again.assigned == 0 and again.frame.equals(first.frame)


def test_drifting_keyframes_refit_and_relabel_everything() -> None:
    keys, reader = _reader(range(6))
    first = label_keyframes(None, pl.DataFrame(), keys, reader, "clip-a", False, CONFIG)
    elsewhere = _unit(np.random.default_rng(7).standard_normal((3, D)))
    new_keys, new_x = keyframes(range(6, 12), 2, elsewhere)
    grown = pl.concat([keys, new_keys])
    reader = Reader(grown, np.concatenate([keyframes(range(6), 1)[1], new_x]))
    second = label_keyframes(first.model, first.frame, grown, reader, "clip-a", False, CONFIG)
    assert second.refit == "drift" and second.drift > CONFIG.drift_ratio
    assert second.model.version != first.model.version and second.assigned == 120
    assert set(second.frame["ai_cluster_version"]) == {second.model.version}


def test_changed_embeddings_refit_and_labels_of_gone_keyframes_drop() -> None:
    keys, reader = _reader(range(6))
    first = label_keyframes(None, pl.DataFrame(), keys, reader, "clip-a", False, CONFIG)
    fewer = keys.filter(pl.col("episode_index") < 4)
    kept = label_keyframes(first.model, first.frame, fewer, reader, "clip-a", False, CONFIG)
    assert kept.frame.height == 40 and kept.assigned == 0
    changed = label_keyframes(first.model, first.frame, fewer, reader, "clip-b", False, CONFIG)
    assert changed.refit == "embedding config changed" and changed.model.fitted_on == "clip-b"


def test_metadata_names_the_refit_and_the_version_it_replaced() -> None:
    keys, reader = _reader(range(6))
    first = label_keyframes(None, pl.DataFrame(), keys, reader, "clip-a", False, CONFIG)
    assert labels_metadata(first, None) == {
        "version": first.model.version,
        "refit": "no saved model",
        "previous_version": None,
        "assigned_rows": 60,
        "drift": None,
        "clusters": 3,
    }
    again = label_keyframes(first.model, first.frame, keys, reader, "clip-a", True, CONFIG)
    meta = labels_metadata(again, first.model)
    assert meta["refit"] == "requested" and meta["previous_version"] == first.model.version
    kept = label_keyframes(first.model, first.frame, keys, reader, "clip-a", False, CONFIG)
    assert labels_metadata(kept, first.model)["previous_version"] is None
