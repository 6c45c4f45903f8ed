"""The language-module interface: every registered module declares what the wiring derives
from it (staging file, column, asset, rules, code version inputs), and runs on an
`EpisodeInput` alone."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.lerobot.language_format import (
    LANGUAGE_EVENTS,
    LANGUAGE_PERSISTENT,
    MODULES,
    column_for_style,
)
from enrich_assets.datasets.lerobot.reader import ParquetRows
from enrich_assets.datasets.video import VideoSlice
from enrich_assets.enrich.episode.keyframes import KeyframePolicy
from enrich_assets.enrich.language.estimate import VLM_ASSETS, episode_requests
from enrich_assets.enrich.language.module import EpisodeInput, LanguageModule, PlanInput
from enrich_assets.enrich.language.plan import PLAN, run_plan
from enrich_assets.enrich.language.registry import LANGUAGE_MODULES
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.infra.prompts import load_prompt
from enrich_assets_tests.language_scripted_vlm import ScriptedVLM

SETTINGS = LanguageSettings()
CAMERAS = ["observation.images.cam_high", "observation.images.cam_wrist"]


def fetch(camera: str, positions) -> list[np.ndarray]:
    return [np.full((48, 64, 3), p % 256, np.uint8) for p in positions]


def test_the_registry_matches_the_staging_layout_and_runs_the_plan_first():
    assert tuple(LANGUAGE_MODULES) == MODULES
    assert next(iter(LANGUAGE_MODULES.values())) is PLAN
    assert {m.column for m in LANGUAGE_MODULES.values()} == {LANGUAGE_PERSISTENT, LANGUAGE_EVENTS}
    assert [m.asset for m in LANGUAGE_MODULES.values()] == [
        "language_plan",
        "language_interjections",
        "language_vqa",
    ]
    assert VLM_ASSETS == {"ai_caption": "caption", **{f"language_{m}": m for m in MODULES}}


@pytest.mark.parametrize("module", list(LANGUAGE_MODULES.values()), ids=str)
def test_a_module_declares_real_prompts_and_settings(module: LanguageModule):
    for name in module.prompts:
        load_prompt(name)
    assert set(module.settings_keys) <= set(asdict(SETTINGS))
    assert all(column_for_style(s) == module.column for s in module.styles)


def test_a_module_writing_two_columns_is_refused():
    with pytest.raises(ValueError, match="not one column"):
        replace(PLAN, name="mixed", styles=frozenset({"plan", "vqa"}))


def test_each_module_runs_on_an_episode_input_and_emits_only_its_styles():
    ts = (np.arange(300) / 30).astype(np.float32)
    client = ScriptedVLM()
    episode = EpisodeInput(0, ts, fetch, CAMERAS, "Pick up the yellow bottle.", SETTINGS)
    plan = run_plan(episode, client)
    planned = replace(episode, task=plan.task, subtasks=plan.subtasks)
    for module in LANGUAGE_MODULES.values():
        output = module.run(episode if module.reads_plan is PlanInput.NONE else planned, client)
        assert output.rows and {r.style for r in output.rows} <= module.styles
        assert [o.rule for o in output.outcomes] == [module.calls_rule]


def test_the_estimate_counts_the_plan_only_when_chosen():
    videos = {c: VideoSlice(Path(f"{c}.mp4")) for c in CAMERAS}
    rows = ParquetRows(Path("d.parquet"), None, 0, 300)
    ref = EpisodeRef("d", 0, 300, 30.0, "Pick up the yellow bottle.", rows, videos)
    policy = KeyframePolicy()
    vqa_only = {r.kind for r in episode_requests(ref, ["vqa"], SETTINGS, policy)}
    assert vqa_only == {"vqa"}
    both = {r.kind for r in episode_requests(ref, ["plan", "interjections"], SETTINGS, policy)}
    assert {"plan_describe", "plan_segment", "interjection"} <= both and "vqa" not in both
    with pytest.raises(ValueError, match="unknown language modules"):
        episode_requests(ref, ["motion"], SETTINGS, policy)
