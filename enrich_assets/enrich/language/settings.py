"""Settings of the language modules, and which of them shape each module's output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from enrich_assets.infra.prompts import prompt_hash

VQA_TYPES = ("bbox", "keypoint", "count", "attribute", "spatial")


@dataclass(frozen=True)
class LanguageSettings:
    # frames sent to the plan calls (describe, segment, task from video)
    plan_fps: float = 1.0
    max_frames_per_call: int = 32  # longer episodes are split into windows of this many
    max_subtasks: int = 8  # per window
    # task
    task_aug_count: int = 10
    derive_task: Literal["off", "if_short", "always"] = "if_short"
    task_min_words: int = 3
    # interjections: anchored at subtask boundaries chosen by a seeded RNG
    max_interjections: int = 3
    interjection_min_t: float = 2.0
    interjection_window_s: float = 2.0
    interjection_window_frames: int = 4
    # vqa: one question per sampled frame per camera, batched per call
    vqa_hz: float = 1.0
    vqa_types: tuple[str, ...] = VQA_TYPES
    # longest side, in pixels, of the frames sent for VQA (0: as decoded); answers come back
    # in the pixels of the image sent and are scaled to those of the decoded frame
    vqa_max_side: int = 0
    # sampling, shared by every request
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int = 1729


# Settings keys that shape several modules' output; each module lists its own in its
# declaration (LanguageModule.settings_keys), captions in captions.CAPTION_SETTINGS.
SAMPLING_KEYS = ("temperature", "max_tokens")
INTERJECTION_TIME_KEYS = ("max_interjections", "interjection_min_t", "seed")


def language_prompt_hash(
    prompts: Sequence[str], settings_keys: Sequence[str], model: str, settings: LanguageSettings
) -> str:
    """The code_version of one module's asset: its prompts, the model and its settings.

    Only the settings that shape that module's output count, so changing the VQA rate
    does not make captions stale.
    """
    values = asdict(settings)
    return prompt_hash(prompts, model, {k: values[k] for k in settings_keys})
