"""What a language run will send, before it runs: the modules themselves run on a sample of
episodes against scripted answers (no model, no network, no decoding), and the requests
they would issue are counted, sized and scaled to the whole dataset.

The same code paths as a real run decide the requests, so the estimate follows any change
to prompts, settings or module logic. It is an upper bound: every answer is counted at its
full max_tokens, near-duplicate keyframes are captioned anew and the cache is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, select_by_count, select_keyframes
from enrich_assets.enrich.language.captions import caption_keyframes
from enrich_assets.enrich.language.module import EpisodeInput, PlanInput
from enrich_assets.enrich.language.plan import PLAN, run_plan
from enrich_assets.enrich.language.registry import LANGUAGE_MODULES
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.models.vlm.ledger import KindEstimate, estimate_work
from enrich_assets.models.vlm.stub_answers import scripted_answer
from enrich_assets.models.vlm.types import VLMReply, VLMRequest

MODULES = ("caption", *LANGUAGE_MODULES)
# the assets that call a VLM, by the module each runs
VLM_ASSETS = {"ai_caption": "caption", **{m.asset: m.name for m in LANGUAGE_MODULES.values()}}
FRAME_SHAPE = (64, 64, 3)  # what the frames look like does not change the request count


class DryRunVLM:
    """A VLMClient answering with the local stub's scripted answers, keeping every request."""

    model = "dry-run"

    def __init__(self) -> None:
        self.requests: list[VLMRequest] = []

    def complete(self, request: VLMRequest) -> VLMReply:
        self.requests.append(request)
        text = scripted_answer(
            request.kind, request.prompt, [(im.shape[1], im.shape[0]) for im in request.images]
        )
        parsed = json.loads(text) if request.json_output else None
        return VLMReply(model=self.model, text=text, parsed=parsed)

    def complete_many(self, requests: list[VLMRequest]) -> list[VLMReply]:
        return [self.complete(r) for r in requests]


def _blank_frames(camera: str, positions: Sequence[int]) -> list[np.ndarray]:
    return [np.zeros(FRAME_SHAPE, np.uint8) for _ in positions]


def keyframe_positions(policy: KeyframePolicy, n_frames: int, timestamps: np.ndarray) -> list[int]:
    """The policy's keyframes; scene-change counted at its maximum (it needs the video)."""
    if policy.mode == "scene_change":
        return select_by_count(n_frames, policy.max_count)
    return select_keyframes(policy, timestamps)


def episode_requests(
    ref: EpisodeRef,
    modules: Sequence[str],
    settings: LanguageSettings,
    policy: KeyframePolicy,
) -> list[VLMRequest]:
    """The requests the selected modules would issue for one episode."""
    unknown = set(modules) - set(MODULES)
    if unknown:
        raise ValueError(f"unknown language modules {sorted(unknown)}; known: {list(MODULES)}")
    timestamps = (np.arange(ref.length) / ref.fps).astype(np.float32)
    counted = DryRunVLM()
    if "caption" in modules:
        picks = keyframe_positions(policy, ref.length, timestamps)
        keys = [(camera, p) for camera in ref.cameras for p in picks]
        caption_keyframes(keys, _blank_frames, ref.task, counted, settings)
    episode = EpisodeInput(
        ref.episode_index, timestamps, _blank_frames, ref.cameras, ref.task, settings
    )
    chosen = [m for name, m in LANGUAGE_MODULES.items() if name in modules]
    if any(m is PLAN or m.reads_plan is not PlanInput.NONE for m in chosen):
        # the other modules read the plan's task and subtasks; its calls count only if chosen
        plan = run_plan(episode, counted if PLAN in chosen else DryRunVLM())
        planned = replace(episode, task=plan.task, subtasks=plan.subtasks)
    for module in chosen:
        if module is not PLAN:
            module.run(episode if module.reads_plan is PlanInput.NONE else planned, counted)
    return counted.requests


@dataclass(frozen=True)
class DatasetEstimate:
    episodes: int
    sampled: int
    work: dict[str, KindEstimate]  # per prompt kind, scaled to every episode


def estimate_dataset(
    refs: Sequence[EpisodeRef],
    modules: Sequence[str],
    settings: LanguageSettings,
    policy: KeyframePolicy,
    sample: int = 20,
) -> DatasetEstimate:
    """Requests of an evenly spread sample of episodes, scaled by the episode count."""
    if not refs:
        raise ValueError("the dataset has no episodes to estimate")
    picks = sorted({int(i) for i in np.linspace(0, len(refs) - 1, min(sample, len(refs)))})
    requests = [r for i in picks for r in episode_requests(refs[i], modules, settings, policy)]
    scale = len(refs) / len(picks)
    work = {
        kind: KindEstimate(round(w.requests * scale), w.input_tokens, w.output_tokens)
        for kind, w in estimate_work(requests).items()
    }
    return DatasetEstimate(len(refs), len(picks), work)
