"""The code location: assets, checks, sensors, schedule, jobs and resources, assembled."""

from __future__ import annotations

import dagster as dg

from enrich_assets.defs import (
    consistency,
    curation,
    derived,
    episode,
    language,
    sql_writeback,
    vision,
    vlm_resource,
    writeback,
)
from enrich_assets.defs.alerts import enrichment_alerts
from enrich_assets.defs.automation import rerun_stale_partitions
from enrich_assets.defs.export_job import export_dataset
from enrich_assets.defs.jobs import enrich_episodes_job
from enrich_assets.defs.partial_ranges import finish_partial_ranges
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.schedules import enrich_missing
from enrich_assets.defs.sensors import new_episodes
from enrich_assets.infra.settings import load_settings


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    return dg.Definitions(
        assets=dg.load_assets_from_modules(
            [episode, vision, language, consistency, writeback, sql_writeback, derived, curation]
        ),
        jobs=[enrich_episodes_job, export_dataset],
        sensors=[new_episodes, rerun_stale_partitions, finish_partial_ranges, enrichment_alerts],
        schedules=[enrich_missing],
        resources={
            "pipeline": PipelineResource(
                data_dir=str(settings.data_dir),
                dataset_roots=[str(r) for r in settings.dataset_roots],
            ),
            "vision": vision.VisionModels(
                profile=settings.model_profile, **settings.compute.model_dump()
            ),
            "vlm": vlm_resource.VLMResource(
                **{
                    "cache_dir": str(settings.data_dir / "vlm_cache"),
                    "budget_dir": str(settings.data_dir / "vlm_budget"),
                    **vlm_resource.vlm_config(),
                }
            ),
        },
    )


defs = build_definitions()
