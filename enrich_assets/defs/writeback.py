"""Language columns written back into the datasets' own parquet files."""

import dagster as dg

from enrich_assets.datasets.lerobot.language_staging import STAGING_DIR
from enrich_assets.datasets.lerobot.language_writer import (
    LanguageValidationError,
    ShardError,
    write_from_staging,
)
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
    written: list[str] = []
    refused: dict[str, str] = {}
    damaged: dict[str, str] = {}
    episodes_written = 0
    for dataset_id, root in sorted(pipeline.registry.load().items()):
        if not (root / STAGING_DIR).is_dir():
            continue
        for data_file in sorted((root / "data").rglob("*.parquet")):
            shard = f"{dataset_id}:{data_file.relative_to(root)}"
            try:
                summary = write_from_staging(root, data_file, blocking_errors)
            except LanguageValidationError as exc:
                refused[shard] = str(exc)[:500]
                continue
            except ShardError as exc:
                damaged[shard] = str(exc)[:500]
                continue
            written.append(shard)
            episodes_written += len(summary.episodes)
    metadata = {
        "files_written": len(written),
        "episodes": episodes_written,
        "files": dg.MetadataValue.json(written),
        "refused": dg.MetadataValue.json(refused),
        "damaged": dg.MetadataValue.json(damaged),
    }
    if refused or damaged:
        parts = []
        if refused:
            parts.append(
                f"{len(refused)} data file(s) refused by the language validator: "
                + ", ".join(refused)
            )
        if damaged:
            named = "; ".join(f"{shard}: {why}" for shard, why in damaged.items())
            parts.append(f"{len(damaged)} data file(s) could not be written: {named}")
        raise dg.Failure(
            description=("; ".join(parts) + f" (every other file written: {len(written)})"),
            metadata=metadata,
        )
    return dg.MaterializeResult(metadata=metadata)
