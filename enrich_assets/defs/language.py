"""Language assets: keyframe captions and tags, lerobot language annotations (plan,
interjections, vqa) staged per episode, and the writeback into the dataset's data files.

One VLM client per asset step (`vlm.session()`), one budget per Dagster run; every call
becomes a row of the `vlm_ledger` table, totalled weekly by the `vlm_cost_weekly` view.
Each module's rows go to its staging file (what the writer reads) and to its catalog table
(what queries read); the validator runs on the episode as the writer will see it, so an
ERROR shows up here, before the writeback refuses the file.
"""

import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import dagster as dg
import duckdb
import numpy as np

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.lerobot.language_format import LanguageRow
from enrich_assets.datasets.lerobot.language_staging import read_episode, write_staged
from enrich_assets.datasets.lerobot.reader import read_frames
from enrich_assets.datasets.video import decode_at
from enrich_assets.defs.episode import episode_manifest, keyframes
from enrich_assets.defs.per_episode import EpisodeOutput, episode_asset, materialize_episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.defs.vision import ai_embedding
from enrich_assets.defs.vlm_resource import (
    SETTINGS,
    VLMResource,
    served_model,
    vlm_config,
)
from enrich_assets.enrich.language.captions import caption_keyframes, caption_tags
from enrich_assets.enrich.language.frames import FrameFetch, cached
from enrich_assets.enrich.language.interjections import run_interjections
from enrich_assets.enrich.language.module_output import ModuleOutput
from enrich_assets.enrich.language.plan import run_plan, subtasks_from_rows
from enrich_assets.enrich.language.settings import language_prompt_hash
from enrich_assets.enrich.language.validator import RULES as LANGUAGE_RULES
from enrich_assets.enrich.language.validator import (
    check_captions,
    validate_episode,
)
from enrich_assets.enrich.language.vqa import run_vqa
from enrich_assets.enrich.rules import Severity
from enrich_assets.infra.partition_keys import partition_key
from enrich_assets.infra.schema import to_table
from enrich_assets.models.vlm.call import complete_concurrently
from enrich_assets.models.vlm.ledger import (
    LEDGER_TABLE,
    LEDGER_VIEWS,
    LedgerEntry,
    ledger_entry,
    load_prices,
    run_totals,
)
from enrich_assets.models.vlm.types import VLMClient, VLMReply, VLMRequest
from enrich_assets.store.images import load_image


class RecordingClient:
    """Passes requests to the run's client and keeps (request, reply) pairs for the ledger,
    each as it lands: calls made before the budget stopped an episode are recorded too."""

    def __init__(self, client: VLMClient) -> None:
        self.client = client
        self.model = client.model
        self.calls: list[tuple[VLMRequest, VLMReply]] = []
        self._lock = threading.Lock()

    def complete(self, request: VLMRequest) -> VLMReply:
        return self.complete_many([request])[0]

    def complete_many(self, requests: list[VLMRequest]) -> list[VLMReply]:
        concurrency = getattr(self.client, "concurrency", 1)
        return complete_concurrently(self.client.complete, requests, concurrency, self._record)

    def _record(self, request: VLMRequest, reply: VLMReply) -> None:
        with self._lock:
            self.calls.append((request, reply))


class Ledger:
    """The ledger rows of one asset's run: written per episode, totalled for the metadata."""

    def __init__(self, context: dg.AssetExecutionContext, pipeline: PipelineResource) -> None:
        self.context = context
        self.pipeline = pipeline
        self.asset = context.asset_key.to_user_string()
        self.prices = load_prices()
        self.entries: list[LedgerEntry] = []

    def record(self, ref: EpisodeRef, calls: Sequence[tuple[VLMRequest, VLMReply]]) -> None:
        key = partition_key(ref.dataset_id, ref.episode_index)
        entries = [
            ledger_entry(
                q,
                a,
                run_id=self.context.run.run_id,
                asset=self.asset,
                partition=key,
                prices=self.prices,
            )
            for q, a in calls
        ]
        self.entries += entries
        versions = self.context.assets_def.code_versions_by_key
        provenance = {
            "dataset_id": ref.dataset_id,
            "episode_index": ref.episode_index,
            "code_version": versions.get(self.context.asset_key) or "",
            "created_at": datetime.now(UTC),
        }
        rows = [{**provenance, **e.as_row()} for e in entries]
        part = f"{self.asset}-{ref.episode_index:06d}-{self.context.run.run_id}-{uuid4().hex[:8]}"
        table = to_table(LEDGER_TABLE, rows)
        self.pipeline.catalog.write(LEDGER_TABLE, ref.dataset_id, part, table)

    def totals(self) -> dict[str, float | int]:
        try:  # the views read the files as they grow: creating them once is enough
            self.pipeline.catalog.refresh_views(LEDGER_VIEWS, timeout_s=5.0)
        except duckdb.IOException as exc:  # someone holds the views file; not this run's fault
            self.context.log.warning(f"catalog views not refreshed: {exc}")
        return run_totals(self.entries)


def _code_version(module: str) -> str:
    return language_prompt_hash(module, served_model(vlm_config()), SETTINGS)[:16]


def _timestamps(ref: EpisodeRef) -> np.ndarray:
    return read_frames(ref, ("timestamp", "episode_index")).column("timestamp").to_numpy()


def _video_fetch(ref: EpisodeRef, timestamps: np.ndarray) -> FrameFetch:
    """Frames by position in the episode, decoded from the camera's video (once each)."""

    def fetch(camera: str, positions: Sequence[int]) -> list[np.ndarray]:
        video = ref.videos[camera]
        at = video.from_timestamp + timestamps.astype(np.float64)[list(positions)]
        return decode_at(video.path, at, ref.fps)

    return cached(fetch)


def _keyframe_rows(pipeline: PipelineResource, ref: EpisodeRef, table: str) -> list[dict]:
    frame = pipeline.catalog.read_part(table, ref.dataset_id, f"{ref.episode_index:06d}")
    return list(frame.sort(["camera", "frame_index"]).iter_rows(named=True)) if frame.height else []


CAPTION_RULES = {"caption_length": Severity.WARN, "caption_present": Severity.WARN}


@episode_asset(
    code_version=_code_version("caption"),
    deps=[keyframes, ai_embedding],
    rules=CAPTION_RULES,
    group_name="language",
    pool="vlm_api",
    kinds={"openai", "duckdb"},
)
def ai_caption(
    context: dg.AssetExecutionContext, pipeline: PipelineResource, vlm: VLMResource
) -> dg.MaterializeResult:
    """A caption per keyframe; near-duplicate keyframes take their original's caption."""
    ledger = Ledger(context, pipeline)
    words: list[int] = []
    reused: list[bool] = []

    def compute(ref: EpisodeRef) -> EpisodeOutput:
        kf = _keyframe_rows(pipeline, ref, "keyframes")
        paths = {(r["camera"], r["frame_index"]): r["tech_image_path"] for r in kf}
        dup_of = {
            (r["camera"], r["frame_index"]): (r["camera"], r["tech_near_dup_of"])
            for r in _keyframe_rows(pipeline, ref, "ai_embedding")
            if r["tech_is_near_duplicate"]
        }

        def fetch(camera: str, frames: Sequence[int]) -> list[np.ndarray]:
            return [load_image(pipeline.artifact_dir, paths[(camera, f)]) for f in frames]

        client = RecordingClient(shared)
        try:
            captions = caption_keyframes(list(paths), fetch, ref.task, client, SETTINGS, dup_of)
        finally:
            ledger.record(ref, client.calls)
        rows = [
            {
                "camera": c.camera,
                "frame_index": c.frame_index,
                "ai_caption": c.text,
                "ai_caption_reused_from": c.reused_from[1] if c.reused_from else None,
                "ai_caption_error": c.error,
                "ai_model_id": c.model,
            }
            for c in captions
        ]
        words.extend(len(c.text.split()) for c in captions if c.text)
        reused.extend(c.reused_from is not None for c in captions)
        return EpisodeOutput(rows, check_captions(captions))

    def summarize() -> dict[str, float | int]:
        mean_words = round(sum(words) / len(words), 2) if words else 0.0
        return {**ledger.totals(), "caption_words_mean": mean_words, "captions_reused": sum(reused)}

    with vlm.session(context.run.run_id) as shared:
        return materialize_episodes(
            context, pipeline, "ai_caption", compute, CAPTION_RULES, ["keyframes"], summarize
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


Module = Callable[[EpisodeRef, np.ndarray, FrameFetch, VLMClient, Path], ModuleOutput]


def _language_asset(
    context: dg.AssetExecutionContext,
    pipeline: PipelineResource,
    vlm: VLMResource,
    module: str,
    run: Module,
    upstream: list[str],
) -> dg.MaterializeResult:
    """Run one module per episode: stage its rows, catalog them, validate the episode."""
    table = f"language_{module}"
    ledger = Ledger(context, pipeline)

    def compute(ref: EpisodeRef) -> EpisodeOutput:
        root = pipeline.registry.root_of(ref.dataset_id)
        timestamps = _timestamps(ref)
        client = RecordingClient(shared)
        try:
            output = run(ref, timestamps, _video_fetch(ref, timestamps), client, root)
        finally:
            ledger.record(ref, client.calls)
        write_staged(root, ref.episode_index, module, output.rows)
        rows = [_catalog_row(module, r, client.model) for r in output.rows]
        checks = validate_episode(read_episode(root, ref.episode_index), timestamps, ref.cameras)
        return EpisodeOutput(rows, [*output.outcomes, *checks])

    with vlm.session(context.run.run_id) as shared:
        return materialize_episodes(
            context, pipeline, table, compute, _rules(module), upstream, ledger.totals
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


def _task(root: Path, ref: EpisodeRef) -> str:
    """The task the plan used (first task_aug row: the dataset's or one derived from video)."""
    plan = read_episode(root, ref.episode_index)["plan"]
    return next((r.content for r in plan if r.style == "task_aug" and r.content), ref.task)


def _rules(module: str) -> dict[str, Severity]:
    return {f"language_{module}_calls": Severity.WARN, **LANGUAGE_RULES}


@episode_asset(
    code_version=_code_version("plan"),
    deps=[episode_manifest],
    rules=_rules("plan"),
    group_name="language",
    pool="vlm_api",
    kinds={"openai", "duckdb"},
)
def language_plan(
    context: dg.AssetExecutionContext, pipeline: PipelineResource, vlm: VLMResource
) -> dg.MaterializeResult:
    """Subtasks, plan, memory and task rephrasings (lerobot's persistent styles)."""

    def run(ref, timestamps, fetch, client, root) -> ModuleOutput:  # noqa: ANN001
        camera = ref.cameras[0]
        return run_plan(ref.episode_index, timestamps, fetch, camera, ref.task, client, SETTINGS)

    return _language_asset(context, pipeline, vlm, "plan", run, ["episode_manifest"])


@episode_asset(
    code_version=_code_version("interjections"),
    deps=[language_plan],
    rules=_rules("interjections"),
    group_name="language",
    pool="vlm_api",
    kinds={"openai", "duckdb"},
)
def language_interjections(
    context: dg.AssetExecutionContext, pipeline: PipelineResource, vlm: VLMResource
) -> dg.MaterializeResult:
    """A person's interjection and the robot's spoken reply at chosen subtask boundaries."""

    def run(ref, timestamps, fetch, client, root) -> ModuleOutput:  # noqa: ANN001
        plan_rows = read_episode(root, ref.episode_index)["plan"]
        subtasks = subtasks_from_rows(plan_rows, timestamps)
        return run_interjections(
            ref.episode_index,
            timestamps,
            fetch,
            ref.cameras[0],
            _task(root, ref),
            subtasks,
            client,
            SETTINGS,
        )

    return _language_asset(
        context, pipeline, vlm, "interjections", run, ["episode_manifest", "language_plan"]
    )


@episode_asset(
    code_version=_code_version("vqa"),
    deps=[episode_manifest],
    rules=_rules("vqa"),
    group_name="language",
    pool="vlm_api",
    kinds={"openai", "duckdb"},
)
def language_vqa(
    context: dg.AssetExecutionContext, pipeline: PipelineResource, vlm: VLMResource
) -> dg.MaterializeResult:
    """Question/answer pairs per sampled frame and camera (boxes, points, counts, ...)."""

    def run(ref, timestamps, fetch, client, root) -> ModuleOutput:  # noqa: ANN001
        return run_vqa(timestamps, fetch, ref.cameras, _task(root, ref), client, SETTINGS)

    return _language_asset(context, pipeline, vlm, "vqa", run, ["episode_manifest"])
