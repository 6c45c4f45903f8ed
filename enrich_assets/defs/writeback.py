"""Enrichments written back: language columns into LeRobot datasets' own parquet files; an
`enrichments` sidecar beside HDF5 datasets."""

from pathlib import Path

import dagster as dg

from enrich_assets.datasets.hdf5.reader import HDF5Reader, is_hdf5_dataset
from enrich_assets.datasets.hdf5.writeback import TABLES, episode_enrichments, write_sidecar
from enrich_assets.datasets.lerobot.language_staging import STAGING_DIR
from enrich_assets.datasets.lerobot.language_writer import write_staged_datasets
from enrich_assets.datasets.lerobot.reader import is_lerobot_root
from enrich_assets.datasets.open import location_exists
from enrich_assets.defs.curation import pipeline_version
from enrich_assets.defs.episode import keyframes, tech_quality
from enrich_assets.defs.jobs import WRITEBACK_GROUP
from enrich_assets.defs.language import (
    ai_caption,
    language_interjections,
    language_plan,
    language_vqa,
)
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.vision import ai_depth, ai_detections, ai_embedding
from enrich_assets.enrich.language.validator import (
    blocking_errors,
)
from enrich_assets.enrich.vision.depth import decode_depth


@dg.asset(
    # the golden-set gate's check is blocking: a rejected pipeline version writes nothing back
    deps=[language_plan, language_interjections, language_vqa, dg.AssetKey("golden_set_score")],
    group_name=WRITEBACK_GROUP,
    kinds={"parquet"},
)
def lerobot_language_writeback(pipeline: PipelineResource) -> dg.MaterializeResult:
    """language_persistent / language_events written into each staged dataset's data files.

    Each data file (shard) is written alone: one with a validator ERROR in any of its
    episodes, or one that is damaged (unreadable parquet), is left untouched; the asset then
    fails, naming each such file and its cause, after writing every other file.
    """
    known = pipeline.registry.load()
    lerobot = {d: Path(r) for d, r in known.items() if is_lerobot_root(r)}
    roots = {d: r for d, r in lerobot.items() if (r / STAGING_DIR).is_dir()}
    outcome = write_staged_datasets(roots, blocking_errors)
    metadata = {
        # language columns live in LeRobot parquet only; other formats keep them in the catalog
        "not_lerobot": dg.MetadataValue.json(sorted(set(known) - set(lerobot))),
        "files_written": len(outcome.written),
        "episodes": outcome.episodes,
        "files": dg.MetadataValue.json(outcome.written),
        "refused": dg.MetadataValue.json(outcome.refused),
        "damaged": dg.MetadataValue.json(outcome.damaged),
    }
    if outcome.refused or outcome.damaged:
        raise dg.Failure(description=outcome.failure_line(), metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    # like the language writeback: nothing is written back past a rejecting golden-set gate
    deps=[keyframes, tech_quality, ai_embedding, ai_detections, ai_depth, ai_caption]
    + [dg.AssetKey("golden_set_score")],
    group_name=WRITEBACK_GROUP,
    kinds={"hdf5"},
)
def hdf5_writeback(pipeline: PipelineResource) -> dg.MaterializeResult:
    """Every registered HDF5 dataset's enrichments, from the catalog, into its sidecar
    `<name>.enrich.h5` (an `enrichments` group per episode; the originals are never written).
    Other formats are skipped."""
    written: dict[str, str] = {}
    episodes = 0
    for dataset_id, location in sorted(pipeline.registry.load().items()):
        if not location_exists(location) or not is_hdf5_dataset(location):
            continue
        reader = HDF5Reader(Path(location), dataset_id)
        tables = {t: pipeline.catalog.read(t, dataset_id) for t in ("keyframes", *TABLES)}
        bundles = episode_enrichments(
            tables, lambda p: decode_depth((pipeline.artifact_dir / p).read_bytes())
        )
        if not bundles:
            continue
        attrs = {"dataset_id": dataset_id, "pipeline_version": pipeline_version()}
        path = write_sidecar(Path(location), reader.episode_names(), bundles, attrs)
        written[dataset_id] = str(path)
        episodes += len(bundles)
    return dg.MaterializeResult(
        metadata={"episodes": episodes, "sidecars": dg.MetadataValue.json(written)}
    )
