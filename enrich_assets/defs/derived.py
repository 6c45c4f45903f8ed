"""Derived assets over all episodes: semantic clusters, near-duplicates, diversity, search.

Unpartitioned: each run reads the ai_embedding table of every registered dataset whose root
is still on disk and rewrites one catalog part ("all") per dataset. Persistent state (the
cluster model, the search index) lives under `data/`, one folder per dataset.
"""

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from enrich_assets.datasets.lerobot import read_frames
from enrich_assets.defs.jobs import DERIVED_GROUP
from enrich_assets.defs.metadata import image_metadata
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.vision import ai_embedding
from enrich_assets.enrich.clusters import (
    ClusterConfig,
    ClusterModel,
    assign_clusters,
    check_cluster_balance,
    drift,
    fit_clusters,
    needs_recluster,
)
from enrich_assets.enrich.diversity import (
    episode_diversity,
    episode_sums,
    percentile,
    repeated_demonstrations,
    trajectory_features,
)
from enrich_assets.enrich.near_duplicates import (
    NearDuplicateIndex,
    episode_duplicates,
    keyframe_duplicates,
)
from enrich_assets.enrich.search_index import extend_search_index, save_search_index
from enrich_assets.schema import config_hash, to_table
from enrich_assets.store.keyframe_search import index_dir

CODE_VERSION = "1"
PART = "all"  # unpartitioned tables: one catalog part per dataset
KEYS = ["episode_index", "camera", "frame_index"]


def derived_dir(data_dir: Path, kind: str, dataset_id: str) -> Path:
    """Where a derived asset keeps its persistent state for one dataset."""
    return data_dir / kind / dataset_id


def embeddings(pipeline: PipelineResource) -> Iterator[tuple[str, pl.DataFrame, np.ndarray]]:
    """(dataset id, keyframe rows sorted by key, (n, d) float32) per live dataset."""
    for dataset_id, root in sorted(pipeline.registry.load().items()):
        if not root.exists():
            continue
        frame = pipeline.catalog.read("ai_embedding", dataset_id)
        if frame.height == 0:
            continue
        frame = frame.sort(KEYS)
        matrix = np.asarray(frame["ai_embedding"].to_list(), np.float32)
        yield dataset_id, frame.select(KEYS), matrix


def write_atomic(path: Path, data: bytes) -> None:
    """A unique temporary file, then rename: concurrent runs never clash or tear the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_rows(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    table: str,
    dataset_id: str,
    rows: list[dict[str, Any]],
) -> None:
    provenance = {
        "dataset_id": dataset_id,
        "code_version": context.assets_def.code_versions_by_key.get(context.asset_key) or "",
        "run_id": context.run.run_id,
        "created_at": datetime.now(UTC),
    }
    pipeline.catalog.write(
        table, dataset_id, PART, to_table(table, [{**provenance, **r} for r in rows])
    )


def bar_chart(values: np.ndarray, height: int = 120, bar: int = 8) -> np.ndarray:
    """A plain bar chart (uint8 RGB), e.g. cluster sizes, for the UI's metadata panel."""
    values = np.asarray(values, np.float64)
    top = values.max() if values.size and values.max() > 0 else 1.0
    image = np.full((height, max(1, len(values)) * bar, 3), 255, np.uint8)
    for i, v in enumerate(values):
        h = int(round(v / top * (height - 4)))
        image[height - h :, i * bar + 1 : (i + 1) * bar - 1] = (70, 110, 180)
    return image


CLUSTER_CONFIG = ClusterConfig()


@dg.asset(
    deps=[ai_embedding],
    code_version=config_hash(CODE_VERSION, CLUSTER_CONFIG),
    check_specs=[dg.AssetCheckSpec("cluster_balance", asset="ai_semantic_cluster")],
    group_name=DERIVED_GROUP,
    kinds={"sklearn", "duckdb"},
)
def ai_semantic_cluster(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Semantic cluster per keyframe; the fitted model is reused until its drift says refit."""
    failures: list[str] = []
    sizes: list[np.ndarray] = []
    meta: dict[str, Any] = {}
    for dataset_id, keys, matrix in embeddings(pipeline):
        if len(matrix) < 2:
            continue
        path = derived_dir(pipeline.settings.data_dir, "clusters", dataset_id) / "model.npz"
        model = ClusterModel.from_bytes(path.read_bytes()) if path.is_file() else None
        refit = model is None or model.mean.shape[0] != matrix.shape[1]
        if not refit:
            labels, distance = assign_clusters(model, matrix)
            refit = needs_recluster(model, distance)
        if refit:
            model = fit_clusters(matrix, CLUSTER_CONFIG)
            labels, distance = assign_clusters(model, matrix)
            write_atomic(path, model.to_bytes())
        rows = [
            {
                **k,
                "ai_cluster_id": int(c),
                "ai_cluster_distance": float(d),
                "ai_cluster_version": model.version,
            }
            for k, c, d in zip(keys.iter_rows(named=True), labels, distance, strict=True)
        ]
        write_rows(context, pipeline, "ai_semantic_cluster", dataset_id, rows)
        balance = check_cluster_balance(labels)
        if not balance.passed:
            failures.append(f"{dataset_id}: {balance.message}")
        sizes.append(np.bincount(labels[labels >= 0], minlength=len(model.centroids)))
        meta[dataset_id] = {
            "version": model.version,
            "refit": bool(refit),
            "drift": round(drift(model, distance), 4),
            "clusters": len(model.centroids),
            "model_path": str(path),
        }
    check = dg.AssetCheckResult(
        check_name="cluster_balance",
        passed=not failures,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failures": "\n".join(failures) or "none"},
    )
    chart = (
        image_metadata(pipeline.artifact_dir, "cluster_sizes", bar_chart(np.concatenate(sizes)))
        if sizes
        else {}
    )
    return dg.MaterializeResult(
        metadata={"datasets": dg.MetadataValue.json(meta), **chart}, check_results=[check]
    )


MAX_DUPLICATE_EPISODE_SHARE = 0.5  # more flagged than this: the threshold or the model is off


@dg.asset(
    deps=[ai_embedding],
    code_version=config_hash(CODE_VERSION, NearDuplicateIndex().threshold),
    check_specs=[dg.AssetCheckSpec("duplicate_episode_share", asset="ai_near_duplicates")],
    group_name=DERIVED_GROUP,
    kinds={"faiss", "duckdb"},
)
def ai_near_duplicates(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Near-duplicate keyframes across all episodes (dup_of, group) and duplicate episodes."""
    failures: list[str] = []
    meta: dict[str, Any] = {}
    for dataset_id, keys, matrix in embeddings(pipeline):
        episodes = keys["episode_index"].to_numpy().astype(np.int64)
        frames = keys["frame_index"].to_numpy().astype(np.int64)
        index = NearDuplicateIndex()
        index.add(matrix, np.arange(len(matrix)), episodes, episodes * 1_000_000 + frames)
        kf = keyframe_duplicates(index)
        ep = episode_duplicates(index)
        dup_episode = dict(zip(ep.episodes.tolist(), ep.dup_of.tolist(), strict=True))
        share = dict(zip(ep.episodes.tolist(), ep.fraction.tolist(), strict=True))
        rows = []
        for i, k in enumerate(keys.iter_rows(named=True)):
            target = keys.row(int(kf.dup_of[i]), named=True) if kf.dup_of[i] >= 0 else None
            of_episode = dup_episode[k["episode_index"]]
            rows.append(
                {
                    **k,
                    "ai_dup_group": int(kf.group[i]),
                    "ai_dup_of_episode": target and target["episode_index"],
                    "ai_dup_of_camera": target and target["camera"],
                    "ai_dup_of_frame": target and target["frame_index"],
                    "ai_is_duplicate_episode": of_episode >= 0,
                    "ai_duplicate_of_episode": of_episode if of_episode >= 0 else None,
                    "ai_duplicate_episode_share": share[k["episode_index"]],
                }
            )
        write_rows(context, pipeline, "ai_near_duplicates", dataset_id, rows)
        flagged = sorted(e for e, o in dup_episode.items() if o >= 0)
        if len(flagged) > MAX_DUPLICATE_EPISODE_SHARE * len(dup_episode):
            failures.append(f"{dataset_id}: {len(flagged)} of {len(dup_episode)} episodes flagged")
        meta[dataset_id] = {
            "duplicate_keyframes": int((kf.dup_of >= 0).sum()),
            "groups": len(set(kf.group[kf.group >= 0].tolist())),
            "duplicate_episodes": flagged,
        }
    check = dg.AssetCheckResult(
        check_name="duplicate_episode_share",
        passed=not failures,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"failures": "\n".join(failures) or "none"},
    )
    return dg.MaterializeResult(
        metadata={"datasets": dg.MetadataValue.json(meta)}, check_results=[check]
    )


def trajectories(pipeline: PipelineResource, dataset_id: str, ids: np.ndarray) -> np.ndarray | None:
    """observation.state and action side by side per episode, or None when a dataset lacks them."""
    sequences = []
    for episode_index in ids.tolist():
        table = read_frames(
            pipeline.episode(dataset_id, episode_index), ("observation.state", "action")
        )
        if not {"observation.state", "action"} <= set(table.column_names):
            return None
        parts = [
            np.asarray(table.column(c).to_pylist(), np.float32)
            for c in ("observation.state", "action")
        ]
        sequences.append(np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1))
    return trajectory_features(sequences)


@dg.asset(
    deps=[ai_embedding],
    code_version=config_hash(CODE_VERSION),
    check_specs=[dg.AssetCheckSpec("diversity_range", asset="ai_episode_diversity")],
    group_name=DERIVED_GROUP,
    kinds={"numpy", "duckdb"},
)
def ai_episode_diversity(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Visual diversity per episode and its most similar other demonstration (vision + motion)."""
    failures: list[str] = []
    meta: dict[str, Any] = {}
    for dataset_id, keys, matrix in embeddings(pipeline):
        episodes = keys["episode_index"].to_numpy()
        ids, diversity = episode_diversity(matrix, episodes)
        rank = percentile(diversity)
        _, sums, _ = episode_sums(matrix, episodes)
        traj = trajectories(pipeline, dataset_id, ids) if len(ids) > 1 else None
        best: dict[int, tuple[int, float]] = {}
        if traj is not None:
            pairs = repeated_demonstrations(sums, traj)
            for a, b, s in zip(pairs.a, pairs.b, pairs.similarity, strict=True):  # best first
                best.setdefault(int(a), (int(b), float(s)))
                best.setdefault(int(b), (int(a), float(s)))
        rows = [
            {
                "episode_index": int(e),
                "ai_diversity": float(d),
                "ai_diversity_percentile": float(p),
                "ai_repeat_of_episode": int(ids[best[i][0]]) if i in best else None,
                "ai_repeat_similarity": best[i][1] if i in best else None,
            }
            for i, (e, d, p) in enumerate(zip(ids, diversity, rank, strict=True))
        ]
        write_rows(context, pipeline, "ai_episode_diversity", dataset_id, rows)
        finite = diversity[np.isfinite(diversity)]
        if ((finite < -1e-4) | (finite > 2 + 1e-4)).any():
            failures.append(f"{dataset_id}: diversity outside [0, 2]")
        meta[dataset_id] = {
            "episodes": len(ids),
            "mean_diversity": round(float(finite.mean()), 4) if finite.size else None,
            "trajectories": traj is not None,
        }
    check = dg.AssetCheckResult(
        check_name="diversity_range",
        passed=not failures,
        metadata={"failures": "\n".join(failures) or "none"},
    )
    return dg.MaterializeResult(
        metadata={"datasets": dg.MetadataValue.json(meta)}, check_results=[check]
    )


@dg.asset(
    deps=[ai_embedding],
    code_version=config_hash(CODE_VERSION),
    check_specs=[dg.AssetCheckSpec("search_index_complete", asset="ai_search_index")],
    group_name=DERIVED_GROUP,
    kinds={"faiss", "duckdb"},
)
def ai_search_index(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """A persisted faiss index of every keyframe embedding; rows map its ids to keyframes."""
    failures: list[str] = []
    meta: dict[str, Any] = {}
    for dataset_id, keys, matrix in embeddings(pipeline):
        index = extend_search_index(None, matrix, np.arange(len(matrix)))
        path = save_search_index(index, index_dir(pipeline.settings.data_dir, dataset_id))
        rows = [
            {**k, "ai_search_id": i, "ai_search_index_path": str(path)}
            for i, k in enumerate(keys.iter_rows(named=True))
        ]
        write_rows(context, pipeline, "ai_search_index", dataset_id, rows)
        if index.ntotal != len(matrix):
            failures.append(f"{dataset_id}: index holds {index.ntotal} of {len(matrix)} rows")
        meta[dataset_id] = {"rows": int(index.ntotal), "path": str(path)}
    check = dg.AssetCheckResult(
        check_name="search_index_complete",
        passed=not failures,
        metadata={"failures": "\n".join(failures) or "none"},
    )
    return dg.MaterializeResult(
        metadata={"datasets": dg.MetadataValue.json(meta)}, check_results=[check]
    )
