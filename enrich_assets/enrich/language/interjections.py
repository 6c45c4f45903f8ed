"""The `interjections` module: mid-episode user interjections, each with the robot's spoken
reply (a `say` tool call) at the same frame timestamp.

The times come from `plan.interjection_positions` (subtask boundaries, seeded RNG), the
same function the plan module uses to refresh the plan there, so the pair stays aligned
when either module is re-run alone.
"""

from __future__ import annotations

import numpy as np

from enrich_assets.datasets.lerobot.language_format import LanguageRow, speech_atom
from enrich_assets.enrich.language.frames import frames_line, window_around
from enrich_assets.enrich.language.module import (
    EpisodeInput,
    LanguageModule,
    ModuleOutput,
    PlanInput,
    Subtask,
)
from enrich_assets.enrich.language.plan import interjection_positions
from enrich_assets.enrich.language.request import prompt_request
from enrich_assets.enrich.language.settings import (
    INTERJECTION_TIME_KEYS,
    SAMPLING_KEYS,
    LanguageSettings,
)
from enrich_assets.enrich.rules import Severity, outcome
from enrich_assets.models.vlm.types import VLMClient, VLMReply, VLMRequest


def interjection_request(
    images: list[np.ndarray],
    window: list[int],
    time_s: float,
    task: str,
    before: Subtask,
    after: Subtask,
    settings: LanguageSettings,
) -> VLMRequest:
    return prompt_request(
        "interjection",
        images,
        settings,
        task=task or "(none)",
        frames=frames_line(window),
        time=f"{time_s:.2f}",
        prev_subtask=before.text,
        next_subtask=after.text,
    )


def _answer(reply: VLMReply) -> tuple[str, str] | None:
    parsed = reply.parsed if isinstance(reply.parsed, dict) else {}
    text, say = parsed.get("text"), parsed.get("say")
    if reply.error or not isinstance(text, str) or not isinstance(say, str):
        return None
    if not text.strip() or not say.strip():
        return None
    return text.strip(), say.strip()


def run_interjections(episode: EpisodeInput, client: VLMClient) -> ModuleOutput:
    """An interjection row and a speech atom per chosen boundary (event styles only)."""
    timestamps, subtasks, settings = episode.timestamps, episode.subtasks, episode.settings
    positions = interjection_positions(subtasks, timestamps, episode.episode_index, settings)
    after_index = {s.start: i for i, s in enumerate(subtasks)}
    windows = [
        window_around(
            timestamps, p, settings.interjection_window_s, settings.interjection_window_frames
        )
        for p in positions
    ]
    requests = []
    for p, w in zip(positions, windows, strict=True):
        i = after_index[p]
        before, after = subtasks[i - 1], subtasks[i]
        images = episode.fetch(episode.cameras[0], w)
        time_s = float(timestamps[p])
        requests.append(
            interjection_request(images, w, time_s, episode.task, before, after, settings)
        )
    replies = client.complete_many(requests)
    rows: list[LanguageRow] = []
    failures: list[str] = []
    for p, reply in zip(positions, replies, strict=True):
        answer = _answer(reply)
        if answer is None:
            failures.append(f"interjection at frame {p}: {reply.error or 'no text/say'}")
            continue
        t = float(timestamps[p])
        rows += [LanguageRow("user", answer[0], "interjection", t), speech_atom(t, answer[1])]
    return ModuleOutput(rows, [outcome(INTERJECTIONS.calls_rule, failures, Severity.WARN)], replies)


INTERJECTIONS = LanguageModule(
    name="interjections",
    description="A person's interjection and the robot's spoken reply at chosen subtask "
    "boundaries.",
    prompts=("interjection",),
    settings_keys=(
        *SAMPLING_KEYS,
        *INTERJECTION_TIME_KEYS,
        "interjection_window_s",
        "interjection_window_frames",
    ),
    styles=frozenset({"interjection", None}),
    run=run_interjections,
    reads_plan=PlanInput.TASK_AND_SUBTASKS,
)
