"""The `plan` module: subtasks (describe -> segment), plan, memory and task_aug rows.

The model first narrates the frames of one camera, then that narration is fed back to
split the episode into consecutive atomic subtasks. Spans are stitched into a gap-free
cover (every frame has exactly one active subtask). Plan and memory rows are derived
from the subtasks without further calls: the plan is the numbered list of subtasks still
to do, written at the start and again at each interjection time; memory lists what is
done, written at each subtask boundary.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from enrich_assets.datasets.lerobot.language_format import LanguageRow
from enrich_assets.enrich.episode.keyframes import select_by_fps
from enrich_assets.enrich.language.frames import (
    FrameFetch,
    frames_line,
    split_windows,
    timestamps_line,
)
from enrich_assets.enrich.language.module import (
    EpisodeInput,
    LanguageModule,
    ModuleOutput,
    Subtask,
)
from enrich_assets.enrich.language.request import prompt_request
from enrich_assets.enrich.language.settings import (
    INTERJECTION_TIME_KEYS,
    SAMPLING_KEYS,
    LanguageSettings,
)
from enrich_assets.enrich.rules import Severity, outcome
from enrich_assets.models.vlm.types import VLMClient, VLMReply

PLACEHOLDER_TASKS = frozenset(
    {"", "debug", "test", "tbd", "todo", "n/a", "none", "default", "task"}
)


@dataclass
class PlanOutput(ModuleOutput):
    subtasks: list[Subtask]
    task: str  # the task the prompts used: the dataset's, or one derived from the video


def task_needs_deriving(task: str, settings: LanguageSettings) -> bool:
    if settings.derive_task == "always":
        return True
    if settings.derive_task == "off":
        return False
    short = len(task.split()) < settings.task_min_words
    return short or task.strip().lower() in PLACEHOLDER_TASKS


def stitch_cover(starts: Sequence[tuple[int, str]], n_frames: int) -> list[Subtask]:
    """Consecutive subtasks from (start position, text): the first starts at frame 0, each
    ends where the next begins, the last ends at the last frame. Repeated starts keep the
    first label."""
    ordered: dict[int, str] = {}
    for start, text in sorted(starts, key=lambda s: s[0]):
        ordered.setdefault(start, text)
    items = list(ordered.items())
    if not items:
        return []
    items[0] = (0, items[0][1])
    bounds = [s for s, _ in items[1:]] + [n_frames]
    return [Subtask(text, s, nxt - 1) for (s, text), nxt in zip(items, bounds, strict=True)]


def _segment_spans(reply: VLMReply, window: list[int]) -> list[tuple[int, str]] | None:
    """(start position, label) per subtask; starts snapped to the nearest frame sent."""
    items = reply.parsed.get("subtasks") if isinstance(reply.parsed, dict) else None
    if reply.error or not isinstance(items, list):
        return None
    sent = np.asarray(window)
    spans = []
    for item in items:
        if not isinstance(item, dict):
            continue
        start, text = item.get("start_frame"), item.get("text")
        if isinstance(start, int) and isinstance(text, str) and text.strip():
            spans.append((int(sent[np.abs(sent - start).argmin()]), text.strip()))
    return spans or None


def staged_task(rows: Sequence[LanguageRow], default: str) -> str:
    """The task the plan used, back from its staged rows (its first task_aug row)."""
    return next((r.content for r in rows if r.style == "task_aug" and r.content), default)


def subtasks_from_rows(rows: Sequence[LanguageRow], timestamps: np.ndarray) -> list[Subtask]:
    """The subtask cover back from staged plan rows (each lasts until the next starts)."""
    position = {float(t): i for i, t in enumerate(timestamps)}
    starts = []
    for row in rows:
        if row.style == "subtask" and row.timestamp is not None:
            if row.timestamp not in position:
                raise ValueError(
                    f"subtask {row.content!r} at {row.timestamp} is not a frame timestamp"
                )
            starts.append((position[row.timestamp], row.content or ""))
    return stitch_cover(starts, len(timestamps))


def interjection_positions(
    subtasks: Sequence[Subtask],
    timestamps: np.ndarray,
    episode_index: int,
    settings: LanguageSettings,
) -> list[int]:
    """Where interjections go: subtask boundaries chosen by an RNG seeded per episode.

    At a boundary the person's words can ask for exactly what the robot does next, so the
    frozen recording stays consistent. Both the plan (refresh) and the interjections
    module call this and get the same positions.
    """
    if len(subtasks) < 2:
        return []
    t0 = float(timestamps[0])
    candidates = [
        s.start
        for s in subtasks[1:]
        if float(timestamps[s.start]) - t0 >= settings.interjection_min_t
    ]
    rng = random.Random(f"{settings.seed}:{episode_index}:interjections")
    return sorted(rng.sample(candidates, min(settings.max_interjections, len(candidates))))


def plan_text(subtasks: Sequence[Subtask], at: int) -> str:
    remaining = [s for s in subtasks if s.start >= at]
    return "\n".join(f"{i}. {s.text}" for i, s in enumerate(remaining, 1))


def memory_text(done: Sequence[Subtask]) -> str:
    return "Done so far: " + "; ".join(s.text for s in done) + "."


def run_plan(episode: EpisodeInput, client: VLMClient) -> PlanOutput:
    """All rows of the plan module for one episode (persistent styles only)."""
    timestamps, fetch, camera = episode.timestamps, episode.fetch, episode.cameras[0]
    task, settings = episode.task, episode.settings
    if len(timestamps) == 0:
        raise ValueError(f"episode {episode.episode_index} has no frames")
    replies: list[VLMReply] = []
    failures: list[str] = []
    positions = select_by_fps(timestamps, settings.plan_fps)
    if task_needs_deriving(task, settings):
        task = _derive_task(task, positions, fetch, camera, client, settings, replies, failures)
    subtasks = _subtasks(
        timestamps, positions, fetch, camera, task, client, settings, replies, failures
    )
    rows = _task_aug_rows(task, timestamps, client, settings, replies, failures)
    rows += _subtask_rows(subtasks, timestamps, episode.episode_index, settings)
    outcomes = [outcome(PLAN.calls_rule, failures, Severity.WARN)]
    return PlanOutput(rows, outcomes, replies, subtasks, task)


def _derive_task(
    task: str,
    positions: list[int],
    fetch: FrameFetch,
    camera: str,
    client: VLMClient,
    settings: LanguageSettings,
    replies: list[VLMReply],
    failures: list[str],
) -> str:
    """The task read from the video (frames spread over the episode), or `task` on failure."""
    picks = np.linspace(0, len(positions) - 1, min(len(positions), settings.max_frames_per_call))
    overview = sorted({positions[int(i)] for i in picks.round()})
    request = prompt_request(
        "task_from_video",
        fetch(camera, overview),
        settings,
        task=task or "(none)",
        frames=frames_line(overview),
    )
    reply = client.complete(request)
    replies.append(reply)
    derived = reply.parsed.get("task") if isinstance(reply.parsed, dict) else None
    if isinstance(derived, str) and derived.strip():
        return derived.strip()
    failures.append(f"task_from_video: {reply.error or 'no task in the answer'}")
    return task


def _subtasks(
    timestamps: np.ndarray,
    positions: list[int],
    fetch: FrameFetch,
    camera: str,
    task: str,
    client: VLMClient,
    settings: LanguageSettings,
    replies: list[VLMReply],
    failures: list[str],
) -> list[Subtask]:
    """Describe then segment each window of frames; stitch all spans into one cover."""
    windows = split_windows(positions, settings.max_frames_per_call)
    images = [fetch(camera, w) for w in windows]

    def fields(w: list[int]) -> dict[str, object]:
        frames, times = frames_line(w), timestamps_line(timestamps, w)
        return {"task": task or "(none)", "frames": frames, "timestamps": times}

    narrations = client.complete_many(
        [
            prompt_request("plan_describe", im, settings, json_output=False, **fields(w))
            for w, im in zip(windows, images, strict=True)
        ]
    )
    texts = ["" if n.error else n.text.strip() for n in narrations]
    segments = client.complete_many(
        [
            prompt_request(
                "plan_segment",
                im,
                settings,
                narration=text or "(none)",
                max_steps=settings.max_subtasks,
                **fields(w),
            )
            for w, im, text in zip(windows, images, texts, strict=True)
        ]
    )
    replies += [*narrations, *segments]

    starts: list[tuple[int, str]] = []
    for w, narration, text, segment in zip(windows, narrations, texts, segments, strict=True):
        if not text:
            failures.append(f"plan_describe frames {w[0]}-{w[-1]}: {narration.error or 'empty'}")
        spans = _segment_spans(segment, w)
        if spans is None:
            failures.append(
                f"plan_segment frames {w[0]}-{w[-1]}: {segment.error or 'no usable subtasks'}"
            )
        starts += spans or []
    return stitch_cover(starts, len(timestamps))


def _task_aug_rows(
    task: str,
    timestamps: np.ndarray,
    client: VLMClient,
    settings: LanguageSettings,
    replies: list[VLMReply],
    failures: list[str],
) -> list[LanguageRow]:
    """The task itself, then up to `task_aug_count` distinct rephrasings, all at t0."""
    if not task or settings.task_aug_count <= 0:
        return []
    reply = client.complete(
        prompt_request("task_aug", [], settings, task=task, count=settings.task_aug_count)
    )
    replies.append(reply)
    raw = reply.parsed.get("rephrasings") if isinstance(reply.parsed, dict) else None
    if not isinstance(raw, list):
        failures.append(f"task_aug: {reply.error or 'no rephrasings in the answer'}")
        raw = []
    phrasings = dict.fromkeys([task, *(p.strip() for p in raw if isinstance(p, str) and p.strip())])
    chosen = list(phrasings)[: settings.task_aug_count + 1]
    t0 = float(timestamps[0])
    return [LanguageRow("user", p, "task_aug", t0) for p in chosen]


def _subtask_rows(
    subtasks: list[Subtask], timestamps: np.ndarray, episode_index: int, settings: LanguageSettings
) -> list[LanguageRow]:
    rows = [
        LanguageRow("assistant", s.text, "subtask", float(timestamps[s.start])) for s in subtasks
    ]
    if not subtasks:
        return rows
    plan_at = [0, *interjection_positions(subtasks, timestamps, episode_index, settings)]
    rows += [
        LanguageRow("assistant", plan_text(subtasks, p), "plan", float(timestamps[p]))
        for p in plan_at
    ]
    rows += [
        LanguageRow("assistant", memory_text(subtasks[:i]), "memory", float(timestamps[s.start]))
        for i, s in enumerate(subtasks[1:], 1)
    ]
    return rows


PLAN = LanguageModule(
    name="plan",
    description="Subtasks, plan, memory and task rephrasings (lerobot's persistent styles).",
    prompts=("plan_describe", "plan_segment", "task_aug", "task_from_video"),
    settings_keys=(
        *SAMPLING_KEYS,
        *INTERJECTION_TIME_KEYS,  # the plan is refreshed at each interjection
        "plan_fps",
        "max_frames_per_call",
        "max_subtasks",
        "task_aug_count",
        "derive_task",
        "task_min_words",
    ),
    styles=frozenset({"subtask", "plan", "memory", "task_aug"}),
    run=run_plan,
)
