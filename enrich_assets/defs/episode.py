"""Foundation assets: the episode manifest, keyframes (decoded once), technical quality."""

import dagster as dg
import numpy as np

from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.defs.metadata import contact_sheet_metadata
from enrich_assets.defs.per_episode import EpisodeOutput, episode_asset, materialize_episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.enrich.episode.keyframes import (
    FRAME_COLUMNS,
    KeyframePolicy,
    check_keyframes,
    extract_keyframes,
    keyframe_rows,
)
from enrich_assets.enrich.episode.quality import QualityConfig, check_quality, score_image
from enrich_assets.enrich.monitoring.alerts import QUALITY_DROP
from enrich_assets.enrich.rules import Severity
from enrich_assets.infra.schema import config_hash, pipeline_config
from enrich_assets.store.images import load_images, save_keyframes

CODE_VERSION = "1"  # bump when the code (not the config) of these assets changes its output
CACHE_FORMAT = "npy-per-camera"  # store/images.py: how keyframes' tech_image_path is stored
KEYFRAME_CONFIG = pipeline_config("keyframes")
QUALITY_CONFIG = pipeline_config("quality")

KEYFRAME_RULES = {"keyframe_per_camera": Severity.ERROR, "keyframe_timestamp_exact": Severity.ERROR}
QUALITY_RULES = {"quality_in_unit_range": Severity.ERROR, "quality_row_count": Severity.ERROR}


def keyframe_policy() -> KeyframePolicy:
    return KeyframePolicy(**pipeline_config("keyframes"))


def quality_config() -> QualityConfig:
    cfg = dict(pipeline_config("quality"))
    w = cfg.pop("weights")
    return QualityConfig(**cfg, weights=(w["sharpness"], w["exposure"], w["completeness"]))


@episode_asset(
    code_version=config_hash(CODE_VERSION),
    group_name="ingest",
    kinds={"duckdb", "parquet"},
)
def episode_manifest(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Length, fps, cameras, resolution, task and files of each episode, checked on disk."""
    from enrich_assets.enrich.episode.manifest import build_manifest

    return materialize_episodes(
        context, pipeline, "episode_manifest", lambda ref: EpisodeOutput(build_manifest(ref)), {}
    )


@episode_asset(
    code_version=config_hash(CODE_VERSION, KEYFRAME_CONFIG, CACHE_FORMAT),
    deps=[episode_manifest],
    rules=KEYFRAME_RULES,
    group_name="ingest",
    kinds={"duckdb", "pyav"},
)
def keyframes(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Keyframes per camera, decoded once (seeking) and cached raw, one memory-mappable file
    per camera named by content hash."""
    policy = keyframe_policy()
    sample: list[np.ndarray] = []  # the first keyframes of the run, for a contact sheet

    def compute(ref: EpisodeRef) -> EpisodeOutput:
        table = read_frames(ref, FRAME_COLUMNS)
        frames = extract_keyframes(ref, policy, table)
        timestamps = table.column("timestamp").to_numpy()
        paths = [
            path
            for camera in ref.cameras
            for path in save_keyframes(
                pipeline.artifact_dir, [f.image for f in frames if f.camera == camera]
            )
        ]
        rows = keyframe_rows(frames, paths)
        outcomes = check_keyframes(
            ref.cameras, [(f.camera, f.timestamp) for f in frames], timestamps
        )
        sample.extend(f.image for f in frames[: 8 - len(sample)])
        return EpisodeOutput(rows, outcomes)

    def summarize() -> dict[str, dg.MetadataValue]:
        return contact_sheet_metadata(pipeline.artifact_dir, sample) if sample else {}

    return materialize_episodes(
        context, pipeline, "keyframes", compute, KEYFRAME_RULES, ["episode_manifest"], summarize
    )


@episode_asset(
    code_version=config_hash(CODE_VERSION, QUALITY_CONFIG),
    deps=[keyframes],
    rules=QUALITY_RULES,
    alerts=[QUALITY_DROP],
    group_name="ingest",
    kinds={"duckdb", "numpy"},
)
def tech_quality(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Sharpness, exposure and completeness per keyframe, and a 0-1 composite."""
    cfg = quality_config()
    scored: list[dict] = []

    def compute(ref: EpisodeRef) -> EpisodeOutput:
        kf = pipeline.catalog.read_part("keyframes", ref.dataset_id, f"{ref.episode_index:06d}")
        images = load_images(pipeline.artifact_dir, kf["tech_image_path"].to_list())
        rows = [
            {"camera": k["camera"], "frame_index": k["frame_index"], **score_image(image, cfg)}
            for k, image in zip(kf.iter_rows(named=True), images, strict=True)
        ]
        scored.extend(rows)
        return EpisodeOutput(rows, check_quality(rows, kf.height))

    def summarize() -> dict[str, float | int]:
        if not scored:
            return {}
        return {
            "mean_quality_score": round(
                float(np.mean([r["tech_quality_score"] for r in scored])), 4
            ),
            "blurry_keyframes": sum(r["tech_is_blurry"] for r in scored),
            "dark_keyframes": sum(r["tech_is_dark"] for r in scored),
            "overexposed_keyframes": sum(r["tech_is_overexposed"] for r in scored),
        }

    return materialize_episodes(
        context, pipeline, "tech_quality", compute, QUALITY_RULES, ["keyframes"], summarize
    )
