"""The `consistency` asset: per episode, the enrichments held against each other (all WARN).

It runs after every asset whose rows it compares and reads them from the catalog; the
comparisons are rows of the `consistency` table, the verdicts rows of `validation` (so
`enrich-assets status` and the validation report agree) and one check evaluation per run.
Dependencies are named by key: the language assets are rebuilt when prompts change.
"""

import dagster as dg

from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.defs.per_episode import EpisodeOutput, episode_asset, materialize_episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.enrich.curation.consistency import (
    MOTION_COLUMNS,
    RULES,
    ConsistencySettings,
    EpisodeEnrichments,
    check_consistency,
    episode_findings,
    frame_signals,
)
from enrich_assets.enrich.vision.detections import load_vocabulary
from enrich_assets.infra.schema import config_hash, pipeline_config
from enrich_assets.infra.settings import load_settings

COMPARED = ("keyframes", "ai_detections", "ai_caption_tags", "language_plan", "language_vqa")
CODE_VERSION = "1"


@episode_asset(
    code_version=config_hash(
        CODE_VERSION, pipeline_config("consistency"), load_settings().consistency.model_dump()
    ),
    deps=list(COMPARED),
    rules=RULES,
    group_name="consistency",
    kinds={"duckdb"},
)
def consistency(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """VQA boxes vs detector boxes, caption objects vs detections, grasp/release subtasks vs
    the gripper channel, subtasks vs state/action motion (enrich/curation/consistency.py)."""
    settings = ConsistencySettings(**pipeline_config("consistency"))
    gripper = load_settings().consistency.gripper_channel

    def compute(ref: EpisodeRef) -> EpisodeOutput:
        part = f"{ref.episode_index:06d}"
        rows = {t: pipeline.catalog.read_part(t, ref.dataset_id, part).to_dicts() for t in COMPARED}
        frames = read_frames(ref, ("timestamp", *MOTION_COLUMNS))
        episode = EpisodeEnrichments(
            keyframes=rows["keyframes"],
            detections=rows["ai_detections"],
            caption_tags=rows["ai_caption_tags"],
            vqa=rows["language_vqa"],
            plan=rows["language_plan"],
            timestamps=frames.column("timestamp").to_numpy(),
            signals=frame_signals(frames),
        )
        findings = episode_findings(episode, load_vocabulary(ref.dataset_id), settings, gripper)
        return EpisodeOutput([f.row() for f in findings], check_consistency(findings))

    return materialize_episodes(context, pipeline, "consistency", compute, RULES, COMPARED)
