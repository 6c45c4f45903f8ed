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

from enrich_assets.datasets.episode import read_frames
from enrich_assets.datasets.open import location_exists
from enrich_assets.defs.jobs import DERIVED_GROUP
from enrich_assets.defs.metadata import png_metadata
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.vision import ai_embedding
from enrich_assets.enrich.curation.plots import bar_png
from enrich_assets.enrich.derived.catalog_frame import frame_table
from enrich_assets.enrich.derived.cluster_labels import (
    cluster_sizes,
    label_keyframes,
    labels_metadata,
)
from enrich_assets.enrich.derived.clusters import ClusterConfig, ClusterModel, check_cluster_balance
from enrich_assets.enrich.derived.diversity_table import (
    TRAJECTORY_COLUMNS,
    diversity_table,
    state_action,
)
from enrich_assets.enrich.derived.duplicate_rows import (
    add_keyframes,
    duplicate_rows,
    summarize_duplicates,
)
from enrich_assets.enrich.derived.embeddings import embedding_config
from enrich_assets.enrich.derived.embeddings import embedding_matrix as align_embeddings
from enrich_assets.enrich.derived.index_plan import KEYS, IndexPlan, plan_index, plan_metadata
from enrich_assets.enrich.derived.keyframe_search import index_dir
from enrich_assets.enrich.derived.near_duplicates import DEFAULT_THRESHOLD, NearDuplicateIndex
from enrich_assets.enrich.derived.near_duplicates import STEM as NEAR_DUPLICATES_STEM
from enrich_assets.enrich.derived.search_index import STEM as SEARCH_STEM
from enrich_assets.enrich.derived.search_index import load_search_index, save_search_index
from enrich_assets.infra.files import file_lock, write_bytes_atomic
from enrich_assets.infra.schema import config_hash
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
        if not location_exists(root) or not pipeline.catalog.has("ai_embedding", dataset_id):
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
    return align_embeddings(dataset_id, keys, pl.concat(parts))


def write_frame(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    table: str,
    dataset_id: str,
    frame: pl.DataFrame,
) -> None:
    """Replace the dataset's part of `table` with `frame` plus provenance, cast to the schema."""
    provenance = {
        "dataset_id": dataset_id,
        "code_version": context.assets_def.code_versions_by_key.get(context.asset_key) or "",
        "run_id": context.run.run_id,
        "created_at": datetime.now(UTC),
    }
    frame = frame.with_columns(**{k: pl.lit(v) for k, v in provenance.items()})
    pipeline.catalog.write(table, dataset_id, PART, frame_table(table, frame))


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


CLUSTER_CONFIG = ClusterConfig()


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
        directory.mkdir(parents=True, exist_ok=True)
        with file_lock(directory / ".init.lock"):
            model = ClusterModel.from_bytes(path.read_bytes()) if path.is_file() else None
            labelled = label_keyframes(
                model,
                pipeline.catalog.read_part("ai_semantic_cluster", dataset_id, PART),
                keys,
                lambda fresh: embedding_matrix(pipeline, dataset_id, fresh),
                embedding_config(keys),
                config.rebuild,
                CLUSTER_CONFIG,
            )
            if labelled.refit:
                write_bytes_atomic(path, labelled.model.to_bytes())
            write_frame(context, pipeline, "ai_semantic_cluster", dataset_id, labelled.frame)
        sizes.append(cluster_sizes(labelled))
        balance = check_cluster_balance(labelled.frame["ai_cluster_id"].to_numpy())
        metadata = {**labels_metadata(labelled, model), "model_path": str(path)}
        return DatasetResult(metadata, "" if balance.passed else balance.message)

    def chart() -> dict[str, Any]:
        if not sizes:
            return {}
        png = bar_png(np.concatenate(sizes), "cluster sizes", "cluster")
        return png_metadata(pipeline.artifact_dir, "cluster_sizes", png)

    return over_datasets(
        pipeline,
        "cluster_balance",
        run,
        dg.AssetCheckSeverity.WARN,
        totals=("assigned_rows",),
        extra=chart,
    )


INDEX_PARAMS = IndexParams()


@dg.asset(
    deps=[ai_embedding],
    code_version=config_hash(CODE_VERSION, DEFAULT_THRESHOLD, INDEX_PARAMS),
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
        index_config = config_hash(embedding_config(keys), DEFAULT_THRESHOLD, INDEX_PARAMS)
        load = NearDuplicateIndex.load
        with index_update(
            directory, NEAR_DUPLICATES_STEM, load, keys, index_config, config.rebuild
        ) as (nd, plan):
            nd = nd or NearDuplicateIndex(DEFAULT_THRESHOLD, INDEX_PARAMS)
            nd.remove(plan.gone)
            if plan.new.height:
                add_keyframes(nd, plan.new, embedding_matrix(pipeline, dataset_id, plan.new))
            frame = duplicate_rows(nd, plan.rows)
            write_frame(context, pipeline, "ai_near_duplicates", dataset_id, frame)
            if plan.changed:  # after the rows: a crash in between repeats this increment
                nd.save(directory, **plan.manifest())
        summary = summarize_duplicates(frame)
        return DatasetResult(
            {
                **plan_metadata(plan, "searched_rows", directory / f"{NEAR_DUPLICATES_STEM}.npz"),
                "duplicate_keyframes": summary.duplicate_keyframes,
                "groups": summary.groups,
                "duplicate_episodes": summary.duplicate_episodes,
            },
            summary.failure,
        )

    return over_datasets(
        pipeline,
        "duplicate_episode_share",
        run,
        dg.AssetCheckSeverity.WARN,
        totals=("searched_rows", "indexed_rows"),
    )


def state_actions(
    pipeline: PipelineResource, dataset_id: str, episodes: list[int]
) -> list[np.ndarray] | None:
    """Each episode's observation.state and action side by side, or None when a dataset lacks
    them (the first episode without them ends the reading)."""
    sequences = []
    for episode_index in episodes:
        sequence = state_action(
            read_frames(pipeline.episode(dataset_id, episode_index), TRAJECTORY_COLUMNS)
        )
        if sequence is None:
            return None
        sequences.append(sequence)
    return sequences


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
        episodes = keys["episode_index"].unique().sort().to_list()
        sequences = state_actions(pipeline, dataset_id, episodes) if len(episodes) > 1 else None
        table = diversity_table(matrix, keys["episode_index"].to_numpy(), sequences)
        write_frame(context, pipeline, "ai_episode_diversity", dataset_id, table.frame)
        return DatasetResult(table.metadata, table.failure)

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
        return DatasetResult(plan_metadata(plan, "added_rows", manifest), failure)

    return over_datasets(
        pipeline, "search_index_complete", run, totals=("added_rows", "indexed_rows")
    )
