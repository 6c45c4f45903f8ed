"""Semantic clusters on planted gaussian clusters: recovery, assignment, drift, balance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from enrich_assets.enrich.derived.clusters import (
    NOISE,
    ClusterConfig,
    ClusterModel,
    assign_clusters,
    check_cluster_balance,
    default_k,
    drift,
    fit_clusters,
    needs_recluster,
)
from enrich_assets.enrich.rules import Severity

D = 64


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def planted(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian clusters on the sphere (member cosine ~0.8, centres ~0); returns the centres."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((len(sizes), D)))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    x = _unit(centres[labels] + rng.standard_normal((len(labels), D)) * 0.06)
    return x, labels, centres


def members_of(centre: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _unit(centre + rng.standard_normal((n, D)) * 0.06)


@pytest.mark.parametrize(
    "config",
    [
        ClusterConfig(k=4, dims=16),
        ClusterConfig(method="hdbscan", dims=16, min_cluster_size=20),
    ],
    ids=["kmeans", "hdbscan"],
)
def test_planted_clusters_are_recovered(config):
    x, labels, _ = planted([300, 200, 150, 100])
    model = fit_clusters(x, config)
    found, _ = assign_clusters(model, x)
    assert len(model.centroids) == 4
    assert (found != NOISE).mean() > 0.95
    assert adjusted_rand_score(labels, found) > 0.95


def test_hdbscan_fits_on_a_sample_and_labels_the_rest():
    x, labels, _ = planted([600, 400, 300, 200], seed=3)
    config = ClusterConfig(method="hdbscan", dims=16, sample_size=500, min_cluster_size=15)
    model = fit_clusters(x, config)
    assert len(model.exemplars) == 500
    found, _ = assign_clusters(model, x)
    assert adjusted_rand_score(labels, found) > 0.95


def test_new_rows_join_their_cluster_without_refit_and_without_drift():
    x, labels, centres = planted([300, 200, 150, 100])
    model = fit_clusters(x, ClusterConfig(k=4, dims=16))
    found, _ = assign_clusters(model, x)
    label_of_2 = np.bincount(found[labels == 2]).argmax()
    new, distance = assign_clusters(model, members_of(centres[2], 50, seed=9))
    assert (new == label_of_2).all()
    assert drift(model, distance) == pytest.approx(1.0, abs=0.1)
    assert not needs_recluster(model, distance)


def test_rows_from_an_unseen_scene_trigger_a_recluster():
    x, _, _ = planted([300, 200, 150, 100])
    model = fit_clusters(x, ClusterConfig(k=4, dims=16))
    unseen = members_of(_unit(np.random.default_rng(7).standard_normal(D)), 50, seed=8)
    _, distance = assign_clusters(model, unseen)
    assert drift(model, distance) > 1.5
    assert needs_recluster(model, distance)


def test_model_round_trips_through_bytes_and_a_refit_is_a_new_version():
    x, _, _ = planted([300, 200, 150, 100])
    model = fit_clusters(x, ClusterConfig(k=4, dims=16))
    again = ClusterModel.from_bytes(model.to_bytes())
    assert again.version == model.version and again.config == model.config
    np.testing.assert_array_equal(assign_clusters(again, x)[0], assign_clusters(model, x)[0])
    refit = fit_clusters(x, ClusterConfig(k=5, dims=16))
    assert refit.version != model.version and refit.version.startswith("kmeans-")


def test_cluster_balance_warns_when_one_cluster_dominates():
    lopsided = np.array([0] * 70 + [1] * 20 + [2] * 10)
    result = check_cluster_balance(lopsided)
    assert result.severity == Severity.WARN and not result.passed
    assert "70%" in result.message and "raise k or switch to HDBSCAN" in result.message
    assert check_cluster_balance(np.array([0] * 50 + [1] * 50)).passed
    assert check_cluster_balance(np.array([NOISE] * 90 + [0] * 10)).passed


def test_default_k_stays_within_20_to_50_with_five_keyframes_per_cluster_at_least():
    sizes = (3, 10, 60, 1_000, 100_000, 10_000_000)
    assert [default_k(n) for n in sizes] == [1, 2, 12, 20, 31, 50]
