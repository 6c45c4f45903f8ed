"""Prompt files load, render with every field, and their hash tracks what shapes output."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from enrich_assets.enrich.language.captions import CAPTION_PROMPTS, CAPTION_SETTINGS
from enrich_assets.enrich.language.registry import LANGUAGE_MODULES
from enrich_assets.enrich.language.settings import LanguageSettings, language_prompt_hash
from enrich_assets.infra.prompts import PROMPTS_DIR, load_prompt, prompt_hash

MODULE_VERSIONS = {
    "caption": (CAPTION_PROMPTS, CAPTION_SETTINGS),
    **{name: (m.prompts, m.settings_keys) for name, m in LANGUAGE_MODULES.items()},
}
NAMES = sorted({n for prompts, _ in MODULE_VERSIONS.values() for n in prompts})


@pytest.mark.parametrize("name", NAMES)
def test_every_prompt_has_system_user_and_few_shot_examples(name):
    prompt = load_prompt(name)
    assert prompt.system and 2 <= len(prompt.examples) <= 3
    fields = {k: "X" for k in ("task", "camera", "frame", "frames", "timestamps", "narration")}
    fields |= {"max_steps": 8, "count": 3, "types": "bbox", "time": "1.00", "size": "64x48"}
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
    def version(module: str, settings: LanguageSettings) -> str:
        return language_prompt_hash(*MODULE_VERSIONS[module], "m", settings)

    s = LanguageSettings()
    faster_vqa = replace(s, vqa_hz=2.0)
    assert version("caption", s) == version("caption", faster_vqa)
    assert version("vqa", s) != version("vqa", faster_vqa)
    assert version("plan", s) != version("plan", replace(s, seed=1))


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
