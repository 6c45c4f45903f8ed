"""Validator rules over one episode's staged language rows (and over captions).

Every rule yields one RuleOutcome, passed or not, named `language_*` / `caption_*`.
Any failed ERROR blocks `lerobot_language_writeback` for the episode's data file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from enrich_assets.datasets.lerobot.language_format import (
    EVENT_STYLES,
    LANGUAGE_EVENTS,
    PERSISTENT_STYLES,
    VIEW_DEPENDENT_STYLES,
    LanguageRow,
    column_for_style,
)
from enrich_assets.enrich.language.captions import Caption
from enrich_assets.enrich.language.registry import LANGUAGE_MODULES
from enrich_assets.enrich.language.vqa_answer import is_text, vqa_answer_shape
from enrich_assets.enrich.rules import RuleOutcome, Severity, outcome


def _speech_atom_problem(row: LanguageRow) -> str | None:
    if row.role != "assistant" or row.content is not None:
        return "a speech atom has role assistant and no content"
    calls = row.tool_calls
    if not isinstance(calls, list) or not calls:
        return "a speech atom needs a non-empty tool_calls list"
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or call.get("type") != "function" or fn.get("name") != "say":
            return "each tool call must be a function call to 'say'"
        args = fn.get("arguments")
        if not isinstance(args, dict) or not is_text(args.get("text")):
            return "a 'say' call needs a non-empty 'text' argument"
    return None


def _where(module: str, row: LanguageRow) -> str:
    return f"{module} {row.style}/{row.role} at {row.timestamp}"


def validate_episode(
    rows_by_module: Mapping[str, Sequence[LanguageRow]],
    timestamps: np.ndarray,
    camera_keys: Sequence[str],
) -> list[RuleOutcome]:
    """All ERROR and WARN rules for one episode's rows, grouped by the module that staged them."""
    frame_ts = {float(t) for t in timestamps}
    fails: dict[str, list[str]] = {name: [] for name in RULES}
    known: list[tuple[str, LanguageRow]] = []  # rows whose style routes somewhere

    for module, rows in rows_by_module.items():
        for row in rows:
            where = _where(module, row)
            if row.style is not None and row.style not in PERSISTENT_STYLES | EVENT_STYLES:
                fails["language_style_known"].append(f"{where}: unknown style")
                continue
            known.append((module, row))
            column = column_for_style(row.style)
            spec = LANGUAGE_MODULES.get(module)
            if spec is None or spec.column != column:
                fails["language_style_column"].append(f"{where}: goes to {column}")
            if (row.style in VIEW_DEPENDENT_STYLES) != (row.camera is not None):
                fails["language_camera_presence"].append(f"{where}: camera {row.camera!r}")
            if row.camera is not None and row.camera not in camera_keys:
                fails["language_camera_known"].append(f"{where}: camera {row.camera!r} unknown")
            if row.timestamp is None:
                fails["language_row_timestamp"].append(f"{where}: no timestamp")
            elif column == LANGUAGE_EVENTS and row.timestamp not in frame_ts:
                fails["language_row_timestamp"].append(f"{where}: not a frame timestamp")
            if not is_text(row.content) and not row.tool_calls:
                fails["language_row_content"].append(f"{where}: neither content nor tool calls")
            if row.style is None or row.tool_calls is not None:
                if (problem := _speech_atom_problem(row)) is not None:
                    fails["language_speech_atom"].append(f"{where}: {problem}")

    at = _timestamps_by_kind([row for _, row in known])
    for t in sorted(at["interjection"]):
        if t not in at["speech"]:
            fails["language_interjection_speech"].append(f"interjection at {t} has no speech atom")
        if t not in at["plan"]:
            fails["language_interjection_plan"].append(f"interjection at {t} has no plan row")
    fails["language_subtask_cover"] += _cover_gaps(at["subtask_list"], timestamps)
    if not at["plan"]:
        fails["language_plan_present"].append("no plan rows emitted")
    for t in sorted(at["memory"] - set(at["subtask_list"])):
        fails["language_memory_boundaries"].append(f"memory at {t} is not at a subtask start")

    vqa = [row for _, row in known if row.style == "vqa"]
    fails["language_vqa_answer"] += _bad_answers(vqa)
    keys = Counter((row.timestamp, row.camera, row.role) for row in vqa)
    fails["language_vqa_unique"] += [f"{n} vqa rows at {k}" for k, n in keys.items() if n > 1]
    fails["language_vqa_order"] += _unpaired(vqa)
    return [outcome(name, fails[name], severity) for name, severity in RULES.items()]


RULES: dict[str, Severity] = {
    "language_style_known": Severity.ERROR,
    "language_style_column": Severity.ERROR,
    "language_camera_presence": Severity.ERROR,
    "language_camera_known": Severity.ERROR,
    "language_row_timestamp": Severity.ERROR,
    "language_interjection_speech": Severity.ERROR,
    "language_interjection_plan": Severity.ERROR,
    "language_vqa_answer": Severity.ERROR,
    "language_vqa_unique": Severity.ERROR,
    "language_vqa_order": Severity.ERROR,
    "language_row_content": Severity.ERROR,
    "language_speech_atom": Severity.ERROR,
    "language_subtask_cover": Severity.ERROR,
    "language_plan_present": Severity.WARN,
    "language_memory_boundaries": Severity.WARN,
}


def _timestamps_by_kind(rows: Sequence[LanguageRow]) -> dict[str, Any]:
    def of(style: str | None) -> set[float]:
        return {r.timestamp for r in rows if r.style == style and r.timestamp is not None}

    speech = {
        r.timestamp for r in rows if r.style is None and r.tool_calls and r.timestamp is not None
    }
    subtasks = [r.timestamp for r in rows if r.style == "subtask" and r.timestamp is not None]
    return {
        "interjection": of("interjection"),
        "plan": of("plan"),
        "memory": of("memory"),
        "speech": speech,
        "subtask_list": sorted(subtasks),
    }


def _cover_gaps(starts: list[float], timestamps: np.ndarray) -> list[str]:
    """Subtasks, each active from its start to the next, must tile the episode exactly."""
    if not starts:
        return []
    problems = []
    if starts[0] != float(timestamps[0]):
        problems.append(f"first subtask starts at {starts[0]}, not at the first frame")
    frame_ts = {float(t) for t in timestamps}
    problems += [f"subtask start {t} is not a frame timestamp" for t in starts if t not in frame_ts]
    problems += [f"{n} subtasks start at {t}" for t, n in Counter(starts).items() if n > 1]
    return problems


def _unpaired(vqa_rows: Sequence[LanguageRow]) -> list[str]:
    """At one (timestamp, camera): the user row (question), then the assistant row (answer)."""
    roles: dict[tuple[float | None, str | None], list[str]] = {}
    for row in vqa_rows:  # in staged order
        roles.setdefault((row.timestamp, row.camera), []).append(row.role)
    return [
        f"vqa rows at {t} ({camera}) are {seq}, not [user, assistant]"
        for (t, camera), seq in roles.items()
        if seq != ["user", "assistant"]
    ]


def _bad_answers(vqa_rows: Sequence[LanguageRow]) -> list[str]:
    bad = []
    for row in vqa_rows:
        if row.role != "assistant":
            continue
        try:
            payload = json.loads(row.content) if row.content is not None else None
        except json.JSONDecodeError:
            bad.append(f"answer at {row.timestamp} ({row.camera}) is not JSON")
            continue
        if vqa_answer_shape(payload) is None:
            keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            bad.append(f"answer at {row.timestamp} ({row.camera}) fits no known shape: {keys}")
    return bad


def blocking(outcomes: Sequence[RuleOutcome]) -> list[RuleOutcome]:
    """The failed ERROR outcomes: any one stops the writer."""
    return [o for o in outcomes if o.severity is Severity.ERROR and not o.passed]


# --- captions -------------------------------------------------------------------------


def caption_shape_problem(text: str) -> str | None:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    words = len(text.split())
    if not 2 <= len(sentences) <= 3 or not 50 <= words <= 200:
        return f"{len(sentences)} sentences, {words} words"
    return None


def check_captions(captions: Sequence[Caption]) -> list[RuleOutcome]:
    """WARN on captions outside 2-3 sentences or 50-200 words, and on missing captions."""
    missing = [f"{c.camera} frame {c.frame_index}: {c.error}" for c in captions if c.text is None]
    shape = []
    for c in captions:
        if c.text is not None and (problem := caption_shape_problem(c.text)):
            shape.append(f"{c.camera} frame {c.frame_index}: {problem}")
    return [
        outcome("caption_length", shape, Severity.WARN),
        outcome("caption_present", missing, Severity.WARN),
    ]


def blocking_errors(
    staged: Mapping[str, Sequence[LanguageRow]], timestamps: np.ndarray, cameras: list[str]
) -> list[str]:
    """The writer's gate: lerobot's rule that any validator ERROR stops the write."""
    return [
        f"{o.rule}: {o.message}" for o in blocking(validate_episode(staged, timestamps, cameras))
    ]
