"""Language assets: keyframe captions and tags, lerobot language annotations (plan,
interjections, vqa) staged per episode, and the writeback into the dataset's data files.

One VLM client per asset step (`vlm.session()`), one budget per Dagster run; every call
becomes a row of the `vlm_ledger` table, totalled weekly by the `vlm_cost_weekly` view.
Each module's rows go to its staging file (what the writer reads) and to its catalog table
(what queries read); the validator runs on the episode as the writer will see it, so an
ERROR shows up here, before the writeback refuses the file. One asset per registered
language module (enrich/language/registry.py), all built by `_module_asset`.
"""

import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import dagster as dg
import duckdb
import numpy as np

from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.datasets.frames import frames_at
from enrich_assets.datasets.lerobot.language_format import LanguageRow
from enrich_assets.datasets.lerobot.language_staging import read_episode, write_staged
from enrich_assets.defs.episode import episode_manifest, keyframes
from enrich_assets.defs.per_episode import EpisodeOutput, episode_asset, materialize_episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.vision import MODELS, PROFILE, VisionModels, ai_embedding, licence_metadata
from enrich_assets.defs.vlm_resource import (
    SETTINGS,
    VLMResource,
    served_model,
    vlm_config,
)
from enrich_assets.enrich.language.captions import (
    CAPTION_PROMPTS,
    CAPTION_SETTINGS,
    Caption,
    caption_keyframes,
    caption_tags,
)
from enrich_assets.enrich.language.frames import FrameFetch, cached
from enrich_assets.enrich.language.module import EpisodeInput, LanguageModule, PlanInput
from enrich_assets.enrich.language.plan import PLAN, staged_task, subtasks_from_rows
from enrich_assets.enrich.language.registry import LANGUAGE_MODULES
from enrich_assets.enrich.language.settings import language_prompt_hash
from enrich_assets.enrich.language.validator import RULES as LANGUAGE_RULES
from enrich_assets.enrich.language.validator import (
    check_captions,
    validate_episode,
)
from enrich_assets.enrich.monitoring.alerts import ERROR_RATE
from enrich_assets.enrich.monitoring.metrics import RunMeter
from enrich_assets.enrich.rules import Severity
from enrich_assets.infra.schema import config_hash, to_table
from enrich_assets.models.registry import profile_model
from enrich_assets.models.vlm.ledger import (
    LEDGER_TABLE,
    LEDGER_VIEWS,
    LedgerEntry,
    ledger_rows,
    load_prices,
    run_totals,
)
from enrich_assets.models.vlm.recording import RecordingClient
from enrich_assets.models.vlm.types import VLMReply, VLMRequest
from enrich_assets.store.images import load_image


class Ledger:
    """The ledger rows of one asset's run: written per episode, totalled for the metadata,
    and handed to the run's `meter` (latency, error rate and cost in run_metrics)."""

    def __init__(self, context: dg.AssetExecutionContext, pipeline: PipelineResource) -> None:
        self.context = context
        self.pipeline = pipeline
        self.asset = context.asset_key.to_user_string()
        self.prices = load_prices()
        self.entries: list[LedgerEntry] = []
        self.meter = RunMeter()

    def record(self, ref: EpisodeRef, calls: Sequence[tuple[VLMRequest, VLMReply]]) -> None:
        versions = self.context.assets_def.code_versions_by_key
        entries, rows = ledger_rows(
            calls,
            run_id=self.context.run.run_id,
            asset=self.asset,
            dataset_id=ref.dataset_id,
            episode_index=ref.episode_index,
            code_version=versions.get(self.context.asset_key) or "",
            prices=self.prices,
        )
        self.entries += entries
        self.meter.add_calls(entries)
        # one part per call batch: a re-run adds rows, it never overwrites paid ones
        part = f"{self.asset}-{ref.episode_index:06d}-{self.context.run.run_id}-{uuid4().hex[:8]}"
        table = to_table(LEDGER_TABLE, rows)
        self.pipeline.catalog.write(LEDGER_TABLE, ref.dataset_id, part, table)

    def totals(self) -> dict[str, float | int]:
        try:  # the views read the files as they grow: creating them once is enough
            self.pipeline.catalog.refresh_views(LEDGER_VIEWS, timeout_s=5.0, missing_only=True)
        except duckdb.IOException as exc:  # someone holds the views file; not this run's fault
            self.context.log.warning(f"catalog views not refreshed: {exc}")
        return run_totals(self.entries)


def _code_version(prompts: Sequence[str], settings_keys: Sequence[str]) -> str:
    return language_prompt_hash(prompts, settings_keys, served_model(vlm_config()), SETTINGS)[:16]


def _timestamps(ref: EpisodeRef) -> np.ndarray:
    return read_frames(ref, ("timestamp", "episode_index")).column("timestamp").to_numpy()


def _frame_fetch(ref: EpisodeRef, timestamps: np.ndarray) -> FrameFetch:
    """Frames by position in the episode, read from the camera's frame source (once each)."""

    def fetch(camera: str, positions: Sequence[int]) -> list[np.ndarray]:
        at = timestamps.astype(np.float64)[list(positions)]
        return frames_at(ref.frames[camera], positions, at, ref.fps)

    return cached(fetch)


def _keyframe_rows(pipeline: PipelineResource, ref: EpisodeRef, table: str) -> list[dict]:
    frame = pipeline.catalog.read_part(table, ref.dataset_id, f"{ref.episode_index:06d}")
    return list(frame.sort(["camera", "frame_index"]).iter_rows(named=True)) if frame.height else []


def _caption_inputs(
    pipeline: PipelineResource, ref: EpisodeRef
) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], tuple[str, int]]]:
    """Each keyframe's image file, and the original of each near-duplicate keyframe."""
    kf = _keyframe_rows(pipeline, ref, "keyframes")
    paths = {(r["camera"], r["frame_index"]): r["tech_image_path"] for r in kf}
    dup_of = {
        (r["camera"], r["frame_index"]): (r["camera"], r["tech_near_dup_of"])
        for r in _keyframe_rows(pipeline, ref, "ai_embedding")
        if r["tech_is_near_duplicate"]
    }
    return paths, dup_of


def _caption_row(c: Caption, licence: str | None) -> dict[str, Any]:
    return {
        "camera": c.camera,
        "frame_index": c.frame_index,
        "ai_caption": c.text,
        "ai_caption_reused_from": c.reused_from[1] if c.reused_from else None,
        "ai_caption_error": c.error,
        "ai_model_id": c.model,
        "ai_model_licence": licence,
    }


CAPTION_RULES = {"caption_length": Severity.WARN, "caption_present": Severity.WARN}
# a profile that names a caption model (Florence-2) captions in-process, not through the VLM
CAPTION_MODEL = profile_model("caption", PROFILE)


@episode_asset(
    code_version=config_hash(MODELS["models"][CAPTION_MODEL])
    if CAPTION_MODEL
    else _code_version(CAPTION_PROMPTS, CAPTION_SETTINGS),
    deps=[keyframes, ai_embedding],
    rules=CAPTION_RULES,
    alerts=[ERROR_RATE],
    group_name="language",
    pool="vlm_api",
    kinds={"openai", "duckdb"},
)
def ai_caption(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    vlm: VLMResource,
    vision: VisionModels,
) -> dg.MaterializeResult:
    """A caption per keyframe; near-duplicate keyframes take their original's caption. By the
    VLM client, or in-process by the profile's caption model (Florence-2: no API, no ledger)."""
    ledger = Ledger(context, pipeline)
    captions: list[Caption] = []
    local = vision.load("caption") if vision.names("caption") else None
    about_local = licence_metadata(context, local.provenance) if local else {}

    def compute(ref: EpisodeRef) -> EpisodeOutput:
        paths, dup_of = _caption_inputs(pipeline, ref)

        def fetch(camera: str, frames: Sequence[int]) -> list[np.ndarray]:
            return [load_image(pipeline.artifact_dir, paths[(camera, f)]) for f in frames]

        if local is not None:  # batched across the episode's keyframes
            made = caption_keyframes(list(paths), fetch, ref.task, local, SETTINGS, dup_of)
        else:
            client = RecordingClient(shared)
            try:
                made = caption_keyframes(list(paths), fetch, ref.task, client, SETTINGS, dup_of)
            finally:
                ledger.record(ref, client.calls)
        captions.extend(made)
        licence = local.provenance.licence if local else None
        return EpisodeOutput([_caption_row(c, licence) for c in made], check_captions(made))

    def summarize() -> dict[str, Any]:
        words = [len(c.text.split()) for c in captions if c.text]
        mean_words = round(sum(words) / len(words), 2) if words else 0.0
        reused = sum(c.reused_from is not None for c in captions)
        totals = {**ledger.totals(), **about_local}
        return {**totals, "caption_words_mean": mean_words, "captions_reused": reused}

    with nullcontext(local) if local else vlm.session(context.run.run_id) as shared:
        return materialize_episodes(
            context,
            pipeline,
            "ai_caption",
            compute,
            CAPTION_RULES,
            ["keyframes"],
            summarize,
            meter=ledger.meter,
        )


@episode_asset(
    code_version="1",
    deps=[ai_caption],
    group_name="language",
    kinds={"duckdb"},
)
def ai_caption_tags(
    context: dg.AssetExecutionContext, pipeline: PipelineResource
) -> dg.MaterializeResult:
    """Object and action words named in each caption (a fixed lexicon, no model call)."""

    def compute(ref: EpisodeRef) -> EpisodeOutput:
        rows = []
        for r in _keyframe_rows(pipeline, ref, "ai_caption"):
            tags = caption_tags(r["ai_caption"] or "")
            rows.append(
                {
                    "camera": r["camera"],
                    "frame_index": r["frame_index"],
                    "ai_caption_objects": list(tags.objects),
                    "ai_caption_actions": list(tags.actions),
                }
            )
        return EpisodeOutput(rows)

    return materialize_episodes(context, pipeline, "ai_caption_tags", compute, {}, ["ai_caption"])


def _episode_input(
    module: LanguageModule, ref: EpisodeRef, root: Path, timestamps: np.ndarray
) -> EpisodeInput:
    """What the module sees of the episode; what it reads of the plan comes from staging."""
    fetch = _frame_fetch(ref, timestamps)
    episode = EpisodeInput(ref.episode_index, timestamps, fetch, ref.cameras, ref.task, SETTINGS)
    if module.reads_plan is PlanInput.NONE:
        return episode
    plan_rows = read_episode(root, ref.episode_index)[PLAN.name]
    task = staged_task(plan_rows, ref.task)
    if module.reads_plan is PlanInput.TASK:
        return replace(episode, task=task)
    return replace(episode, task=task, subtasks=subtasks_from_rows(plan_rows, timestamps))


def _run_module(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    vlm: VLMResource,
    module: LanguageModule,
    upstream: list[str],
) -> dg.MaterializeResult:
    """Run one module per episode: stage its rows, catalog them, validate the episode."""
    ledger = Ledger(context, pipeline)

    def compute(ref: EpisodeRef) -> EpisodeOutput:
        root = pipeline.workspace(ref.dataset_id)
        timestamps = _timestamps(ref)
        client = RecordingClient(shared)
        try:
            output = module.run(_episode_input(module, ref, root, timestamps), client)
        finally:
            ledger.record(ref, client.calls)
        write_staged(root, ref.episode_index, module.name, output.rows)
        rows = [_catalog_row(module.name, r, client.model) for r in output.rows]
        checks = validate_episode(read_episode(root, ref.episode_index), timestamps, ref.cameras)
        return EpisodeOutput(rows, [*output.outcomes, *checks])

    rules = _rules(module)
    with vlm.session(context.run.run_id) as shared:
        return materialize_episodes(
            context,
            pipeline,
            module.asset,
            compute,
            rules,
            upstream,
            ledger.totals,
            meter=ledger.meter,
        )


def _catalog_row(module: str, row: LanguageRow, model: str) -> dict[str, Any]:
    return {
        "camera": row.camera,
        "ai_language_module": module,
        "ai_language_role": row.role,
        "ai_language_content": row.content,
        "ai_language_style": row.style,
        "tech_timestamp": row.timestamp,
        "ai_language_tool_calls": None
        if row.tool_calls is None
        else json.dumps(row.tool_calls, sort_keys=True),
        "ai_model_id": model,
    }


def _rules(module: LanguageModule) -> dict[str, Severity]:
    return {module.calls_rule: Severity.WARN, **LANGUAGE_RULES}


def _module_asset(module: LanguageModule, plan: dg.AssetsDefinition | None) -> dg.AssetsDefinition:
    """The asset of one registered module; one that reads the plan's subtasks runs after it."""
    after_plan = module.reads_plan is PlanInput.TASK_AND_SUBTASKS
    if after_plan and plan is None:
        raise ValueError(f"module {module.name!r} reads the plan: register it after the plan")
    upstream = ["episode_manifest", PLAN.asset] if after_plan else ["episode_manifest"]

    def materialize(
        context: dg.AssetExecutionContext, pipeline: PipelineResource, vlm: VLMResource
    ) -> dg.MaterializeResult:
        return _run_module(context, pipeline, vlm, module, upstream)

    materialize.__name__ = module.asset  # the asset key, and the asset its checks name
    return episode_asset(
        code_version=_code_version(module.prompts, module.settings_keys),
        deps=[plan] if after_plan else [episode_manifest],
        rules=_rules(module),
        alerts=[ERROR_RATE],
        description=module.description,
        group_name="language",
        pool="vlm_api",
        kinds={"openai", "duckdb"},
    )(materialize)


def _module_assets() -> dict[str, dg.AssetsDefinition]:
    """One asset per registered module, in registry order (the plan first)."""
    built: dict[str, dg.AssetsDefinition] = {}
    for name, module in LANGUAGE_MODULES.items():
        built[name] = _module_asset(module, built.get(PLAN.name))
    return built


LANGUAGE_ASSETS = _module_assets()
# Named at module level because Definitions and pipeline_version collect this module's
# AssetsDefinition attributes, and the writeback depends on each by name.
language_plan = LANGUAGE_ASSETS["plan"]
language_interjections = LANGUAGE_ASSETS["interjections"]
language_vqa = LANGUAGE_ASSETS["vqa"]
