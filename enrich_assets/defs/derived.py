"""Derived assets over all episodes: semantic clusters, near-duplicates, diversity, search.

Unpartitioned: each run covers every registered dataset whose root is still on disk and
rewrites one catalog part ("all") per dataset. State between runs lives under `data/`, one
folder per dataset: the cluster model, and the near-duplicate and search indexes with the
keys of the keyframes they hold. Runs are incremental: only keyframes not yet indexed (or
labelled) have their embeddings read, searched and added, so a run after new episodes costs
about what the new episodes hold, and a run with nothing new next to nothing. A changed
embedding config (the ai_embedding rows' code_version) or `rebuild: true` in the run config
starts from scratch; a drifting cluster model is refitted, which is a new clustering version.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pyarrow as pa

from enrich_assets.datasets.lerobot.reader import read_frames
from enrich_assets.defs.jobs import DERIVED_GROUP
from enrich_assets.defs.metadata import image_metadata
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.vision import ai_embedding
from enrich_assets.enrich.derived.clusters import (
    ClusterConfig,
    ClusterModel,
    assign_clusters,
    check_cluster_balance,
    drift,
    fit_clusters,
    needs_recluster,
)
from enrich_assets.enrich.derived.diversity import (
    episode_diversity,
    episode_sums,
    percentile,
    repeated_demonstrations,
    trajectory_features,
)
from enrich_assets.enrich.derived.index_plan import KEYS, IndexPlan, plan_index
from enrich_assets.enrich.derived.keyframe_search import index_dir
from enrich_assets.enrich.derived.near_duplicates import (
    DEFAULT_THRESHOLD,
    NearDuplicateIndex,
    episode_duplicates,
    keyframe_duplicates,
)
from enrich_assets.enrich.derived.near_duplicates import STEM as NEAR_DUPLICATES_STEM
from enrich_assets.enrich.derived.search_index import STEM as SEARCH_STEM
from enrich_assets.enrich.derived.search_index import load_search_index, save_search_index
from enrich_assets.infra.files import file_lock, write_bytes_atomic
from enrich_assets.infra.schema import config_hash, table_schema
from enrich_assets.store.vector_index import IndexParams, KeyframeIndex, has_saved_index

CODE_VERSION = "2"
PART = "all"  # unpartitioned tables: one catalog part per dataset


class DerivedConfig(dg.Config):
    """Run config of every derived asset."""

    rebuild: bool = False  # ignore saved state: index every keyframe anew / refit the clusters


def derived_dir(data_dir: Path, kind: str, dataset_id: str) -> Path:
    """Where a derived asset keeps its persistent state for one dataset."""
    return data_dir / kind / dataset_id


def embedded_keyframes(pipeline: PipelineResource) -> Iterator[tuple[str, pl.DataFrame]]:
    """(dataset id, keys + embedding code_version of its embedded keyframes, in key order) per
    live dataset. Only these columns are read; vectors come from `embedding_matrix`."""
    for dataset_id, root in sorted(pipeline.registry.load().items()):
        if not root.exists() or not pipeline.catalog.has("ai_embedding", dataset_id):
            continue
        parts = pipeline.catalog.root / "ai_embedding" / dataset_id / "*.parquet"  # its layout
        keys = pl.scan_parquet(parts).select(*KEYS, "code_version").collect()
        if keys.height:
            yield dataset_id, keys.sort(KEYS)


def embedding_matrix(pipeline: PipelineResource, dataset_id: str, keys: pl.DataFrame) -> np.ndarray:
    """(n, d) float32 embeddings of these keyframes (KEYS columns), in their order, read from
    their own episodes' catalog parts only."""
    episodes = keys["episode_index"].unique().sort().to_list()
    parts = [
        pipeline.catalog.read_part("ai_embedding", dataset_id, f"{e:06d}").select(
            *KEYS, "ai_embedding"
        )
        for e in episodes
    ]
    vectors = keys.select(KEYS).join(pl.concat(parts), on=KEYS, how="left", maintain_order="left")
    vectors = vectors["ai_embedding"]
    if vectors.null_count() or vectors.list.len().n_unique() != 1:
        raise ValueError(f"{dataset_id}: ai_embedding rows are missing or of different widths")
    return vectors.explode().to_numpy().astype(np.float32).reshape(len(keys), -1)


def embedding_config(keys: pl.DataFrame) -> str:
    """What the dataset's embeddings are: their code_versions (model, weights, preprocessing)."""
    return config_hash(sorted(keys["code_version"].unique().to_list()))


def write_frame(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    table: str,
    dataset_id: str,
    frame: pl.DataFrame,
) -> None:
    """Replace the dataset's part of `table` with `frame` plus provenance, cast to the schema.

    Columnar throughout (no row dicts): a million keyframes write in about a second.
    """
    schema = table_schema(table)
    provenance = {
        "dataset_id": dataset_id,
        "code_version": context.assets_def.code_versions_by_key.get(context.asset_key) or "",
        "run_id": context.run.run_id,
        "created_at": datetime.now(UTC),
    }
    data = frame.with_columns(**{k: pl.lit(v) for k, v in provenance.items()}).to_arrow()
    missing = [
        n for n in schema.names if n not in data.column_names and n not in ("frame_index", "camera")
    ]
    if missing:
        raise RuntimeError(f"rows for {table} lack declared columns {missing}")
    columns = [
        data[f.name].cast(f.type) if f.name in data.column_names else pa.nulls(len(data), f.type)
        for f in schema
    ]
    pipeline.catalog.write(table, dataset_id, PART, pa.Table.from_arrays(columns, schema=schema))


@dataclass
class DatasetResult:
    """One dataset's share of a derived run: metadata for the UI and the check's verdict."""

    metadata: dict[str, Any]
    failure: str = ""  # why this dataset fails the asset's check; "" when it passes


def over_datasets(
    pipeline: PipelineResource,
    check: str,
    run: Callable[[str, pl.DataFrame], DatasetResult],
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    totals: tuple[str, ...] = (),
    extra: Callable[[], dict[str, Any]] = dict,
) -> dg.MaterializeResult:
    """Run a derived asset's `run(dataset_id, keys)` for every live dataset with embeddings,
    then report: each dataset's metadata, `totals` of those summed over datasets (numbers the
    UI plots across runs), `extra()` metadata, and one evaluation of the asset's check that
    names the failing datasets."""
    failures: list[str] = []
    meta: dict[str, dict[str, Any]] = {}
    for dataset_id, keys in embedded_keyframes(pipeline):
        result = run(dataset_id, keys)
        meta[dataset_id] = result.metadata
        if result.failure:
            failures.append(f"{dataset_id}: {result.failure}")
    check_result = dg.AssetCheckResult(
        check_name=check,
        passed=not failures,
        severity=severity,
        metadata={"failures": "\n".join(failures) or "none"},
    )
    summed = {k: sum(m.get(k, 0) for m in meta.values()) for k in totals}
    return dg.MaterializeResult(
        metadata={"datasets": dg.MetadataValue.json(meta), **summed, **extra()},
        check_results=[check_result],
    )


@contextmanager
def index_update(
    directory: Path,
    stem: str,
    load: Callable[[Path], tuple[Any, dict[str, np.ndarray]]],
    keys: pl.DataFrame,
    config: str,
    rebuild: bool,
) -> Iterator[tuple[Any, IndexPlan]]:
    """(the saved index, or None when it must start from empty; the plan bringing it in step
    with `keys`), with the folder locked until the caller has saved: one writer at a time."""
    directory.mkdir(parents=True, exist_ok=True)
    with file_lock(directory / ".init.lock"):
        saved = load(directory) if not rebuild and has_saved_index(directory, stem) else None
        plan = plan_index(saved[1] if saved else None, keys, config, rebuild)
        yield (saved[0] if saved and not plan.rebuild else None), plan


def index_metadata(plan: IndexPlan, searched: str, path: Path) -> dict[str, Any]:
    """What an index run did, per dataset: `searched` names the count of rows it added."""
    return {
        searched: plan.new.height,
        "removed_rows": int(plan.gone.size),
        "indexed_rows": plan.rows.height,
        "rebuilt": plan.rebuild or None,
        "saved": plan.changed,
        "manifest": str(path),
    }


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
LABELS_SCHEMA = {
    "episode_index": pl.Int64,
    "camera": pl.String,
    "frame_index": pl.Int64,
    "ai_cluster_id": pl.Int64,
    "ai_cluster_distance": pl.Float32,
    "ai_cluster_version": pl.String,
}


def refit_reason(model: ClusterModel | None, embeddings: str, rebuild: bool) -> str:
    """Why the stored cluster model cannot label new keyframes as it is ("" when it can)."""
    if rebuild:
        return "requested"
    if model is None:
        return "no saved model"
    if model.fitted_on != embeddings:
        return "embedding config changed"
    return ""


def kept_labels(
    pipeline: PipelineResource, dataset_id: str, keys: pl.DataFrame, model: ClusterModel
) -> pl.DataFrame:
    """Last run's labels of keyframes still present, given by this model version."""
    previous = pipeline.catalog.read_part("ai_semantic_cluster", dataset_id, PART)
    if not previous.height:
        return pl.DataFrame(schema=LABELS_SCHEMA)
    previous = previous.filter(pl.col("ai_cluster_version") == model.version)
    return previous.select(list(LABELS_SCHEMA)).cast(LABELS_SCHEMA).join(keys, on=KEYS, how="semi")


@dg.asset(
    deps=[ai_embedding],
    code_version=config_hash(CODE_VERSION, CLUSTER_CONFIG),
    check_specs=[dg.AssetCheckSpec("cluster_balance", asset="ai_semantic_cluster")],
    group_name=DERIVED_GROUP,
    kinds={"sklearn", "duckdb"},
)
def ai_semantic_cluster(
    context: dg.AssetExecutionContext, config: DerivedConfig, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Semantic cluster per keyframe. Keyframes not labelled yet are assigned to the stored
    model's nearest centroids; a refit (a new clustering version, relabelling everything)
    happens on request, for a new embedding config, or when they drift from the model."""
    sizes: list[np.ndarray] = []

    def run(dataset_id: str, keys: pl.DataFrame) -> DatasetResult:
        if keys.height < 2:
            return DatasetResult({"skipped": "fewer than 2 keyframes"})
        directory = derived_dir(pipeline.settings.data_dir, "clusters", dataset_id)
        path = directory / "model.npz"
        embeddings = embedding_config(keys)
        directory.mkdir(parents=True, exist_ok=True)
        with file_lock(directory / ".init.lock"):
            model = ClusterModel.from_bytes(path.read_bytes()) if path.is_file() else None
            previous_version = model and model.version
            refit = refit_reason(model, embeddings, config.rebuild)
            kept = pl.DataFrame(schema=LABELS_SCHEMA)
            if not refit:
                kept = kept_labels(pipeline, dataset_id, keys, model)
            fresh = keys.select(KEYS).join(kept, on=KEYS, how="anti")
            labels, distance = np.empty(0, np.int64), np.empty(0, np.float32)
            drifted = None  # the new keyframes' drift from the stored model
            if fresh.height and not refit:
                matrix = embedding_matrix(pipeline, dataset_id, fresh)
                labels, distance = assign_clusters(model, matrix)
                drifted = round(drift(model, distance), 4)
                refit = "drift" if needs_recluster(model, distance) else ""
            if refit:
                kept, fresh = kept.clear(), keys.select(KEYS)
                matrix = embedding_matrix(pipeline, dataset_id, fresh)
                model = fit_clusters(matrix, CLUSTER_CONFIG, fitted_on=embeddings)
                labels, distance = assign_clusters(model, matrix)
                write_bytes_atomic(path, model.to_bytes())
            fresh = fresh.with_columns(
                ai_cluster_id=pl.Series(labels, dtype=pl.Int64),
                ai_cluster_distance=pl.Series(distance, dtype=pl.Float32),
                ai_cluster_version=pl.lit(model.version),
            )
            frame = pl.concat([kept, fresh]).sort(KEYS)
            write_frame(context, pipeline, "ai_semantic_cluster", dataset_id, frame)
        every = frame["ai_cluster_id"].to_numpy()
        sizes.append(np.bincount(every[every >= 0], minlength=len(model.centroids)))
        balance = check_cluster_balance(every)
        return DatasetResult(
            {
                "version": model.version,
                "refit": refit or None,
                "previous_version": previous_version if refit else None,
                "assigned_rows": fresh.height,
                "drift": drifted,
                "clusters": len(model.centroids),
                "model_path": str(path),
            },
            "" if balance.passed else balance.message,
        )

    def chart() -> dict[str, Any]:
        if not sizes:
            return {}
        return image_metadata(
            pipeline.artifact_dir, "cluster_sizes", bar_chart(np.concatenate(sizes))
        )

    return over_datasets(
        pipeline,
        "cluster_balance",
        run,
        dg.AssetCheckSeverity.WARN,
        totals=("assigned_rows",),
        extra=chart,
    )


INDEX_PARAMS = IndexParams()
NEAR_DUP_THRESHOLD = DEFAULT_THRESHOLD
MAX_DUPLICATE_EPISODE_SHARE = 0.5  # more flagged than this: the threshold or the model is off


def duplicate_rows(nd: NearDuplicateIndex, rows: pl.DataFrame) -> pl.DataFrame:
    """The ai_near_duplicates rows of every indexed keyframe (`rows`: id + keys)."""
    kf = keyframe_duplicates(nd)
    ep = episode_duplicates(nd)
    target = rows.select(
        pl.col("id").alias("dup_of"),
        pl.col("episode_index").alias("ai_dup_of_episode"),
        pl.col("camera").alias("ai_dup_of_camera"),
        pl.col("frame_index").alias("ai_dup_of_frame"),
    )
    of_episode = pl.col("of_episode")
    episodes = pl.DataFrame(
        {"episode_index": ep.episodes, "of_episode": ep.dup_of, "share": ep.fraction}
    ).select(
        "episode_index",
        ai_is_duplicate_episode=of_episode >= 0,
        ai_duplicate_of_episode=pl.when(of_episode >= 0).then(of_episode),
        ai_duplicate_episode_share="share",
    )
    groups = pl.DataFrame({"id": kf.ids, "ai_dup_group": kf.group, "dup_of": kf.dup_of})
    return (
        rows.join(groups, on="id")
        .join(target, on="dup_of", how="left")
        .join(episodes, on="episode_index", how="left")
        .drop("id", "dup_of")
        .sort(KEYS)
    )


@dg.asset(
    deps=[ai_embedding],
    code_version=config_hash(CODE_VERSION, NEAR_DUP_THRESHOLD, INDEX_PARAMS),
    check_specs=[dg.AssetCheckSpec("duplicate_episode_share", asset="ai_near_duplicates")],
    group_name=DERIVED_GROUP,
    kinds={"faiss", "duckdb"},
)
def ai_near_duplicates(
    context: dg.AssetExecutionContext, config: DerivedConfig, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Near-duplicate keyframes across all episodes (dup_of, group) and duplicate episodes.
    Only keyframes not indexed yet are searched (against everything) and added."""

    def run(dataset_id: str, keys: pl.DataFrame) -> DatasetResult:
        directory = derived_dir(pipeline.settings.data_dir, "near_duplicates", dataset_id)
        index_config = config_hash(embedding_config(keys), NEAR_DUP_THRESHOLD, INDEX_PARAMS)
        load = NearDuplicateIndex.load
        with index_update(
            directory, NEAR_DUPLICATES_STEM, load, keys, index_config, config.rebuild
        ) as (nd, plan):
            nd = nd or NearDuplicateIndex(NEAR_DUP_THRESHOLD, INDEX_PARAMS)
            nd.remove(plan.gone)
            if plan.new.height:
                episodes = plan.new["episode_index"].to_numpy()
                order = episodes * 1_000_000 + plan.new["frame_index"].to_numpy()
                x = embedding_matrix(pipeline, dataset_id, plan.new)
                nd.add(x, plan.new["id"].to_numpy(), episodes, order)
            frame = duplicate_rows(nd, plan.rows)
            write_frame(context, pipeline, "ai_near_duplicates", dataset_id, frame)
            if plan.changed:  # after the rows: a crash in between repeats this increment
                nd.save(directory, **plan.manifest())
        episodes = frame.unique("episode_index")
        flagged = episodes.filter("ai_is_duplicate_episode")["episode_index"].sort().to_list()
        failure = ""
        if len(flagged) > MAX_DUPLICATE_EPISODE_SHARE * episodes.height:
            failure = f"{len(flagged)} of {episodes.height} episodes flagged"
        return DatasetResult(
            {
                **index_metadata(plan, "searched_rows", directory / f"{NEAR_DUPLICATES_STEM}.npz"),
                "duplicate_keyframes": int(frame["ai_dup_of_episode"].is_not_null().sum()),
                "groups": frame.filter(pl.col("ai_dup_group") >= 0)["ai_dup_group"].n_unique(),
                "duplicate_episodes": flagged,
            },
            failure,
        )

    return over_datasets(
        pipeline,
        "duplicate_episode_share",
        run,
        dg.AssetCheckSeverity.WARN,
        totals=("searched_rows", "indexed_rows"),
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
    """Visual diversity per episode and its most similar other demonstration (vision + motion).
    Recomputed over every episode each run (it reads every embedding)."""

    def run(dataset_id: str, keys: pl.DataFrame) -> DatasetResult:
        matrix = embedding_matrix(pipeline, dataset_id, keys)
        episodes = keys["episode_index"].to_numpy()
        ids, diversity = episode_diversity(matrix, episodes)
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
            for i, (e, d, p) in enumerate(zip(ids, diversity, percentile(diversity), strict=True))
        ]
        frame = pl.DataFrame(rows, infer_schema_length=None)
        write_frame(context, pipeline, "ai_episode_diversity", dataset_id, frame)
        finite = diversity[np.isfinite(diversity)]
        bad = ((finite < -1e-4) | (finite > 2 + 1e-4)).any()
        return DatasetResult(
            {
                "episodes": len(ids),
                "mean_diversity": round(float(finite.mean()), 4) if finite.size else None,
                "trajectories": traj is not None,
            },
            "diversity outside [0, 2]" if bad else "",
        )

    return over_datasets(pipeline, "diversity_range", run)


@dg.asset(
    deps=[ai_embedding],
    code_version=config_hash(CODE_VERSION, INDEX_PARAMS),
    check_specs=[dg.AssetCheckSpec("search_index_complete", asset="ai_search_index")],
    group_name=DERIVED_GROUP,
    kinds={"faiss", "duckdb"},
)
def ai_search_index(
    context: dg.AssetExecutionContext, config: DerivedConfig, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """A persisted faiss index of every keyframe embedding; rows map its ids to keyframes.
    Only keyframes not indexed yet are read and added."""

    def run(dataset_id: str, keys: pl.DataFrame) -> DatasetResult:
        directory = index_dir(pipeline.settings.data_dir, dataset_id)
        index_config = config_hash(embedding_config(keys), INDEX_PARAMS)
        with index_update(
            directory, SEARCH_STEM, load_search_index, keys, index_config, config.rebuild
        ) as (index, plan):
            index = index or KeyframeIndex(INDEX_PARAMS)
            index.remove(plan.gone)
            if plan.new.height:
                index.add(
                    embedding_matrix(pipeline, dataset_id, plan.new), plan.new["id"].to_numpy()
                )
            manifest = directory / f"{SEARCH_STEM}.npz"
            frame = plan.rows.rename({"id": "ai_search_id"}).with_columns(
                ai_search_index_path=pl.lit(str(manifest))
            )
            write_frame(context, pipeline, "ai_search_index", dataset_id, frame)
            if plan.changed:  # after the rows: a crash in between repeats this increment
                save_search_index(index, directory, **plan.manifest())
        failure = ""
        if not index.ntotal == plan.rows.height == keys.height:
            failure = f"index holds {index.ntotal} rows, the catalog {keys.height} keyframes"
        return DatasetResult(index_metadata(plan, "added_rows", manifest), failure)

    return over_datasets(
        pipeline, "search_index_complete", run, totals=("added_rows", "indexed_rows")
    )
