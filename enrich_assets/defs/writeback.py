"""Language columns written back into the datasets' own parquet files."""

from pathlib import Path

import dagster as dg

from enrich_assets.datasets.lerobot.language_staging import STAGING_DIR
from enrich_assets.datasets.lerobot.language_writer import write_staged_datasets
from enrich_assets.datasets.lerobot.reader import is_lerobot_root
from enrich_assets.defs.jobs import WRITEBACK_GROUP
from enrich_assets.defs.language import language_interjections, language_plan, language_vqa
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.enrich.language.validator import (
    blocking_errors,
)


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
