"""The language-module interface: what a module declares, what it sees of one episode, and
what it returns.

A module (plan, interjections, vqa) is declared once and registered in `registry.py`; the
Dagster assets, the cost estimate and the validator's column rule are derived from that
declaration, so adding a module means one file and one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from enrich_assets.datasets.lerobot.language_format import LanguageRow, column_for_style
from enrich_assets.enrich.language.frames import FrameFetch
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.enrich.rules import RuleOutcome
from enrich_assets.models.vlm.types import VLMClient, VLMReply


class PlanInput(Enum):
    """What a module takes from the plan module's output (the plan itself takes nothing)."""

    NONE = "none"
    TASK = "task"  # the task the plan used: the dataset's, or one derived from the video
    TASK_AND_SUBTASKS = "task_and_subtasks"  # ... and its subtask cover: runs after the plan


@dataclass(frozen=True)
class Subtask:
    text: str
    start: int  # first frame position, inclusive
    end: int  # last frame position, inclusive


@dataclass(frozen=True, eq=False)
class EpisodeInput:
    """One episode as every module sees it, whether frames come from video or are blank."""

    episode_index: int
    timestamps: np.ndarray  # the source frame timestamps, copied
    fetch: FrameFetch
    cameras: Sequence[str]  # the first is the one single-camera modules look through
    task: str
    settings: LanguageSettings
    subtasks: Sequence[Subtask] = ()  # filled for PlanInput.TASK_AND_SUBTASKS only


@dataclass
class ModuleOutput:
    """What a language module returns: its rows, its own rule outcomes, the replies it used
    (for model ids, token counts and the call ledger)."""

    rows: list[LanguageRow]
    outcomes: list[RuleOutcome]
    replies: list[VLMReply]


@dataclass(frozen=True)
class LanguageModule:
    """A module's declaration: everything the wiring needs to run, version and check it."""

    name: str  # also its staging file (`<name>.jsonl`)
    description: str  # shown on its asset
    prompts: tuple[str, ...]  # prompt files it renders: part of its code_version
    settings_keys: tuple[str, ...]  # the LanguageSettings that shape its output
    styles: frozenset[str | None]  # the row styles it emits (None: a speech atom)
    run: Callable[[EpisodeInput, VLMClient], ModuleOutput]
    reads_plan: PlanInput = PlanInput.NONE

    def __post_init__(self) -> None:
        columns = {column_for_style(s) for s in self.styles}
        if len(columns) != 1:  # lerobot: re-running one module never touches another column
            raise ValueError(f"module {self.name!r} writes to {sorted(columns)}, not one column")

    @property
    def column(self) -> str:
        """The one lerobot language column its rows go to."""
        return column_for_style(next(iter(self.styles)))

    @property
    def asset(self) -> str:
        """Its asset key and catalog table."""
        return f"language_{self.name}"

    @property
    def calls_rule(self) -> str:
        """The WARN rule its failed calls are reported under."""
        return f"language_{self.name}_calls"
