"""`export_dataset`: the curated export as a Dagster job, configured at launch (UI launchpad
or API), the same code as `enrich-assets export`."""

from pathlib import Path

import dagster as dg

from enrich_assets.defs.resources import PipelineResource
from enrich_assets.enrich.curation.curated_export import curated_export


class ExportConfig(dg.Config):
    dataset: str  # dataset root
    out: str  # new dataset root (absent or empty)
    where: str = "true"  # SQL over the episode view (see `enrich-assets export --help`)
    cluster_balance: bool = False


@dg.op
def export_selected_episodes(
    context: dg.OpExecutionContext, config: ExportConfig, pipeline: PipelineResource
) -> dg.Output[str]:
    result = curated_export(
        pipeline.catalog,
        pipeline.registry,
        Path(config.dataset),
        Path(config.out),
        config.where,
        config.cluster_balance,
    )
    context.log.info(f"{len(result.chosen)} of {result.episodes_total} episodes -> {result.out}")
    return dg.Output(
        str(result.out),
        metadata={
            "episodes_selected": len(result.chosen),
            "episodes_total": result.episodes_total,
            "source_episodes": dg.MetadataValue.json(result.chosen),
            "out": dg.MetadataValue.path(str(result.out)),
            "where": config.where,
        },
    )


@dg.job(description="Write the episodes an SQL filter selects as a new LeRobot v3.0 dataset.")
def export_dataset() -> None:
    export_selected_episodes()
