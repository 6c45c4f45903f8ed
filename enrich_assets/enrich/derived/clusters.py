"""Semantic clusters of keyframe embeddings that scale to millions and extend cheaply.

Fit once: PCA to a few dozen dimensions (fit on a sample), then MiniBatchKMeans, or HDBSCAN
on a sample (variable density, a noise label) whose points become the exemplars every other
keyframe is labelled by (nearest exemplar). HDBSCAN on everything is what this avoids: ~13
minutes for 100k points at 64 dimensions on 2 cores.

New episodes are assigned to the fitted model without refitting. Drift is their mean
distance to the nearest centroid over the same figure at fit time; past `drift_ratio` the
caller refits, which yields a new model version.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, replace
from typing import Literal

import faiss
import numpy as np

from enrich_assets.enrich.rules import RuleOutcome, Severity, outcome
from enrich_assets.store.vector_index import chunks, unit_rows

NOISE = -1
MAX_LARGEST_FRACTION = 0.6


@dataclass(frozen=True)
class ClusterConfig:
    method: Literal["kmeans", "hdbscan"] = "kmeans"
    k: int | None = None  # kmeans clusters; None: from dataset size (`default_k`)
    dims: int = 32  # PCA dimensions clustered in
    sample_size: int = 20_000  # rows the PCA (and HDBSCAN) are fitted on
    min_cluster_size: int | None = None  # HDBSCAN; None: 1/800 of the sample, at least 10
    min_samples: int = 5  # HDBSCAN; lower labels fewer points noise
    drift_ratio: float = 1.25  # refit when new rows sit this much farther from centroids
    seed: int = 0


MIN_PER_CLUSTER = 5  # keyframes per cluster on average, at least


def default_k(n: int) -> int:
    """sqrt(n)/10 clamped to 20-50: 20 up to 40k keyframes, 50 from 250k; below 100
    keyframes n/5, since clusters of one or two keyframes measure no spread, and drift is
    measured against the spread at fit time."""
    return max(1, min(n // MIN_PER_CLUSTER, int(np.clip(np.sqrt(n) / 10, 20, 50))))


@dataclass(frozen=True)
class ClusterModel:
    config: ClusterConfig
    mean: np.ndarray  # (d,) float32, subtracted before projecting
    components: np.ndarray  # (dims, d) float32, PCA axes
    centroids: np.ndarray  # (k, dims) float32, one per cluster
    exemplars: np.ndarray  # (m, dims) float32; a row takes its nearest exemplar's label
    exemplar_labels: np.ndarray  # (m,) int64 cluster id or NOISE
    baseline: float  # mean distance to the nearest centroid at fit time
    fitted_on: str = ""  # what the embeddings were (e.g. their config hash): refit when it differs

    @property
    def version(self) -> str:
        """Content hash: a refit that changes anything is a new clustering version."""
        return f"{self.config.method}-{hashlib.sha256(self.to_bytes()).hexdigest()[:12]}"

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            config=np.array(json.dumps(asdict(self.config))),
            mean=self.mean,
            components=self.components,
            centroids=self.centroids,
            exemplars=self.exemplars,
            exemplar_labels=self.exemplar_labels,
            baseline=np.float64(self.baseline),
            fitted_on=np.array(self.fitted_on),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ClusterModel:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        return cls(
            ClusterConfig(**json.loads(str(z["config"]))),
            z["mean"],
            z["components"],
            z["centroids"],
            z["exemplars"],
            z["exemplar_labels"],
            float(z["baseline"]),
            str(z["fitted_on"]) if "fitted_on" in z else "",  # saved before it existed
        )


def _project(embeddings: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Unit rows, centred and projected on the PCA axes, chunk by chunk."""
    out = np.empty((len(embeddings), len(components)), np.float32)
    for part in chunks(len(embeddings)):
        out[part] = (unit_rows(embeddings[part]) - mean) @ components.T
    return out


def _nearest(points: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, euclidean distance) of each point's nearest target, exact."""
    index = faiss.IndexFlatL2(targets.shape[1])
    index.add(np.ascontiguousarray(targets, np.float32))
    dist, idx = index.search(np.ascontiguousarray(points, np.float32), 1)
    return idx[:, 0], np.sqrt(np.maximum(dist[:, 0], 0))


def _pca(sample: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    mean = sample.mean(axis=0)
    centered = sample - mean
    _, vecs = np.linalg.eigh(centered.T @ centered)
    components = vecs[:, ::-1][:, :dims].T
    return mean.astype(np.float32), np.ascontiguousarray(components, np.float32)


def fit_clusters(
    embeddings: np.ndarray, config: ClusterConfig = ClusterConfig(), fitted_on: str = ""
) -> ClusterModel:
    """Fit a model on all keyframe embeddings (n, d); label them with `assign_clusters`.
    `fitted_on` names the embedding space (stored, part of the version)."""
    n, d = embeddings.shape
    if n < 2:
        raise ValueError(f"clustering needs at least 2 embeddings, got {n}")
    rng = np.random.default_rng(config.seed)
    sample_rows = np.sort(rng.choice(n, min(n, config.sample_size), replace=False))
    sample = unit_rows(embeddings[sample_rows])
    mean, components = _pca(sample, min(config.dims, d))
    if config.method == "kmeans":
        from sklearn.cluster import MiniBatchKMeans

        k = config.k or default_k(n)
        kmeans = MiniBatchKMeans(k, batch_size=4096, n_init=3, random_state=config.seed)
        kmeans.fit(_project(embeddings, mean, components))
        centroids = kmeans.cluster_centers_.astype(np.float32)
        exemplars, exemplar_labels = centroids, np.arange(k, dtype=np.int64)
    elif config.method == "hdbscan":
        import hdbscan

        min_size = config.min_cluster_size or max(10, len(sample) // 800)
        exemplars = _project(sample, mean, components)
        exemplar_labels = (
            hdbscan.HDBSCAN(min_cluster_size=min_size, min_samples=config.min_samples)
            .fit_predict(exemplars)
            .astype(np.int64)
        )
        k = int(exemplar_labels.max()) + 1
        if k == 0:
            raise ValueError("HDBSCAN found no clusters: lower min_cluster_size or use kmeans")
        centroids = np.stack([exemplars[exemplar_labels == c].mean(axis=0) for c in range(k)])
    else:
        raise ValueError(f"unknown clustering method {config.method!r}: kmeans or hdbscan")
    model = ClusterModel(
        config, mean, components, centroids, exemplars, exemplar_labels, 0.0, fitted_on
    )
    return replace(model, baseline=float(assign_clusters(model, sample)[1].mean()))


def assign_clusters(model: ClusterModel, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster id or NOISE, distance to the nearest centroid) per row; no refit.

    The distance is measured in the embedding space (in-plane plus off-plane part), so rows
    the PCA was fitted on and new rows are measured alike.
    """
    labels = np.empty(len(embeddings), np.int64)
    distance = np.empty(len(embeddings), np.float32)
    for part in chunks(len(embeddings)):
        centred = unit_rows(embeddings[part]) - model.mean
        x = centred @ model.components.T
        labels[part] = model.exemplar_labels[_nearest(x, model.exemplars)[0]]
        off_plane = np.maximum((centred**2).sum(axis=1) - (x**2).sum(axis=1), 0)
        distance[part] = np.sqrt(_nearest(x, model.centroids)[1] ** 2 + off_plane)
    return labels, distance


def drift(model: ClusterModel, distances: np.ndarray) -> float:
    """Mean centroid distance of (new) rows relative to the fit-time baseline; 1.0 = no drift."""
    return float(np.mean(distances) / model.baseline)


def needs_recluster(model: ClusterModel, distances: np.ndarray) -> bool:
    return drift(model, distances) > model.config.drift_ratio


def check_cluster_balance(
    labels: np.ndarray, max_fraction: float = MAX_LARGEST_FRACTION
) -> RuleOutcome:
    """WARN when one cluster holds more than `max_fraction` of all keyframes."""
    clustered = labels[labels != NOISE]
    failures = []
    if clustered.size:
        sizes = np.bincount(clustered)
        largest = int(sizes.argmax())
        share = sizes[largest] / len(labels)
        if share > max_fraction:
            failures.append(
                f"cluster {largest} holds {share:.0%} of {len(labels)} keyframes"
                f" (limit {max_fraction:.0%}): raise k or switch to HDBSCAN"
            )
    return outcome("cluster_balance", failures, Severity.WARN)
