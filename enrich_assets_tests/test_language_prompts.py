"""Prompt files load, render with every field, and their hash tracks what shapes output."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from enrich_assets.enrich.language.settings import (
    MODULE_PROMPTS,
    LanguageSettings,
    language_prompt_hash,
)
from enrich_assets.infra.prompts import PROMPTS_DIR, load_prompt, prompt_hash

NAMES = sorted({n for names in MODULE_PROMPTS.values() for n in names})


@pytest.mark.parametrize("name", NAMES)
def test_every_prompt_has_system_user_and_few_shot_examples(name):
    prompt = load_prompt(name)
    assert prompt.system and 2 <= len(prompt.examples) <= 3
    fields = {k: "X" for k in ("task", "camera", "frame", "frames", "timestamps", "narration")}
    fields |= {"max_steps": 8, "count": 3, "types": "bbox", "time": "1.00"}
    fields |= {"prev_subtask": "a", "next_subtask": "b"}
    text = prompt.render(**fields)
    assert "$" not in text.replace("$examples", "") and "Example 1" in text
    assert "Task: X" in text  # the line the local stub and the model read


def test_a_missing_field_is_named():
    with pytest.raises(ValueError, match="'narration'"):
        load_prompt("plan_segment").render(task="t", frames="0", timestamps="0", max_steps=3)


def test_hash_changes_with_text_examples_model_and_params(tmp_path):
    root = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, root)
    base = prompt_hash(["vqa"], "m", {"t": 0}, root)
    assert base == prompt_hash(["vqa"], "m", {"t": 0}, root)
    assert base != prompt_hash(["vqa"], "m2", {"t": 0}, root)
    assert base != prompt_hash(["vqa"], "m", {"t": 0.2}, root)
    (root / "examples" / "vqa.json").write_text('[{"input": "i", "output": "o"}]')
    changed_example = prompt_hash(["vqa"], "m", {"t": 0}, root)
    (root / "vqa.md").write_text((root / "vqa.md").read_text() + "\nBe brief.\n")
    assert len({base, changed_example, prompt_hash(["vqa"], "m", {"t": 0}, root)}) == 3


def test_module_hash_ignores_other_modules_settings():
    s = LanguageSettings()
    faster_vqa = replace(s, vqa_hz=2.0)
    assert language_prompt_hash("caption", "m", s) == language_prompt_hash(
        "caption", "m", faster_vqa
    )
    assert language_prompt_hash("vqa", "m", s) != language_prompt_hash("vqa", "m", faster_vqa)
    assert language_prompt_hash("plan", "m", s) != language_prompt_hash(
        "plan", "m", replace(s, seed=1)
    )


def test_language_section_of_the_settings_file_overrides_defaults(tmp_path, monkeypatch):
    from enrich_assets.defs.vlm_resource import language_settings

    path = tmp_path / "settings.yaml"
    path.write_text("language:\n  task_aug_count: 4\n  vqa_types: [count, bbox]\n")
    monkeypatch.setenv("ENRICH_SETTINGS", str(path))
    settings = language_settings()
    assert (settings.task_aug_count, settings.vqa_types) == (4, ("count", "bbox"))
    assert settings.max_interjections == 3  # the default stays
    path.write_text("language:\n  task_aug: 4\n")
    with pytest.raises(ValueError, match=r"settings.yaml:2: language.task_aug: unknown setting"):
        language_settings()
