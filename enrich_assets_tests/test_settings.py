"""The one settings model: every key typed and checked, errors one line naming file, line, key."""

import dataclasses

import pytest

from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.infra.settings import (
    LanguageSection,
    SettingsError,
    VLMSettings,
    load_settings,
)


def _load(tmp_path, text, monkeypatch):
    path = tmp_path / "enrich-assets.yaml"
    path.write_text(text)
    monkeypatch.delenv("ENRICH_SETTINGS", raising=False)
    for var in (
        "ENRICH_DATA_DIR",
        "ENRICH_BATCH_SIZE",
        "ENRICH_MODEL_PROFILE",
        "ENRICH_SCHEDULE_HOURS",
    ):
        monkeypatch.delenv(var, raising=False)
    return load_settings(tmp_path)


def test_every_section_is_read_typed(tmp_path, monkeypatch):
    s = _load(
        tmp_path,
        "data_dir: out\nbatch_size: 8\nmodel_profile: small\n"
        "vlm:\n  backend: openai\n  model: gpt-4o-mini\n  base_url: http://x/v1\n"
        "  retry: {max_attempts: 2, initial_s: 0.1, max_s: 1}\n  temperature: 0.3\n"
        "  max_tokens: 200\n  max_repairs: 0\n  json_mode: false\n  image_format: jpeg\n"
        "vlm_secondary: {backend: local-stub, model: other}\n"
        "language: {task_aug_count: 4, vqa_types: [count]}\n",
        monkeypatch,
    )
    assert s.data_dir == tmp_path / "out" and s.batch_size == 8 and s.model_profile == "small"
    assert s.vlm.as_config() == {
        "backend": "openai",
        "model": "gpt-4o-mini",
        "base_url": "http://x/v1",
        "retry": {"max_attempts": 2, "initial_s": 0.1, "max_s": 1.0},
        "temperature": 0.3,
        "max_tokens": 200,
        "max_repairs": 0,
        "json_mode": False,
        "image_format": "jpeg",
    }
    assert s.vlm_secondary.as_config() == {"backend": "local-stub", "model": "other"}
    assert s.language.overrides() == {"task_aug_count": 4, "vqa_types": ("count",)}


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    path = tmp_path / "enrich-assets.yaml"
    path.write_text("batch_size: 8\nmodel_profile: small\n")
    monkeypatch.setenv("ENRICH_BATCH_SIZE", "16")
    monkeypatch.setenv("ENRICH_MODEL_PROFILE", "tiny")
    s = load_settings(tmp_path)
    assert (s.batch_size, s.model_profile) == (16, "tiny")
    monkeypatch.setenv("ENRICH_BATCH_SIZE", "lots")
    with pytest.raises(SettingsError, match="ENRICH_BATCH_SIZE='lots'"):
        load_settings(tmp_path)


def test_schedule_hours_from_file_or_environment_within_a_day(tmp_path, monkeypatch):
    assert _load(tmp_path, "", monkeypatch).schedule_hours == 6
    assert _load(tmp_path, "schedule_hours: 2\n", monkeypatch).schedule_hours == 2
    monkeypatch.setenv("ENRICH_SCHEDULE_HOURS", "12")
    assert load_settings(tmp_path).schedule_hours == 12
    monkeypatch.setenv("ENRICH_SCHEDULE_HOURS", "0")
    with pytest.raises(SettingsError, match="ENRICH_SCHEDULE_HOURS='0'"):
        load_settings(tmp_path)
    monkeypatch.delenv("ENRICH_SCHEDULE_HOURS")
    with pytest.raises(SettingsError, match=r":1: schedule_hours: Input should be less than or"):
        _load(tmp_path, "schedule_hours: 48\n", monkeypatch)


@pytest.mark.parametrize(
    "text, message",
    [
        ("vlm:\n  model: m\n  no_such_key: 1\n", r"enrich-assets.yaml:3: vlm.no_such_key: unknown"),
        ("batch_size: 1\nbatchsize: 2\n", r"enrich-assets.yaml:2: batchsize: unknown setting"),
        ("vlm:\n  retry: {max_attempts: 2, tries: 1}\n", r":2: vlm.retry.tries: unknown setting"),
        ("language:\n\n  vqa_rate: 2\n", r"enrich-assets.yaml:3: language.vqa_rate: unknown"),
        ("vlm_secondary:\n  colour: red\n", r":2: vlm_secondary.colour: unknown setting"),
        ("vlm:\n  image_format: gif\n", r":2: vlm.image_format: Input should be 'png' or"),
        ("vlm:\n  backend: transformers\n  base_url: x\n", r":3: vlm.base_url: not a setting of"),
        ("vlm: [unclosed\n", r"enrich-assets.yaml:1: malformed YAML"),
        ("a: 1\nvlm: {model: x\nb: 2\n", r"enrich-assets.yaml:2: malformed YAML"),
        ("a: 1\n  b: : 2\n", r"enrich-assets.yaml:2: malformed YAML"),
        ("- a list\n", r"enrich-assets.yaml:1: the settings file must be a mapping"),
    ],
)
def test_bad_settings_are_one_line_naming_file_line_and_key(tmp_path, monkeypatch, text, message):
    with pytest.raises(SettingsError, match=message) as info:
        _load(tmp_path, text, monkeypatch)
    assert "\n" not in str(info.value)


def test_unknown_key_error_lists_the_known_ones(tmp_path, monkeypatch):
    with pytest.raises(SettingsError) as info:
        _load(tmp_path, "vlm:\n  retries: 3\n", monkeypatch)
    assert "known: backend, model" in str(info.value) and "retry" in str(info.value)


def test_language_section_has_exactly_the_language_settings_fields():
    assert set(LanguageSection.model_fields) == {
        f.name for f in dataclasses.fields(LanguageSettings)
    }


def test_settings_file_named_by_env_var(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.yaml"
    path.write_text("vlm: {model: named}\n")
    monkeypatch.setenv("ENRICH_SETTINGS", str(path))
    assert load_settings(tmp_path).vlm.model == "named"
    path.write_text("vlm: {modle: named}\n")
    with pytest.raises(SettingsError, match=r"elsewhere.yaml:1: vlm.modle: unknown"):
        load_settings(tmp_path)


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("ENRICH_SETTINGS", raising=False)
    monkeypatch.delenv("ENRICH_DATA_DIR", raising=False)
    s = load_settings(tmp_path)
    assert s.vlm == VLMSettings() and s.vlm.as_config() == {} and s.vlm_secondary is None
    assert s.data_dir == tmp_path / "data"


def test_vlm_sampling_settings_reach_the_language_settings(tmp_path, monkeypatch):
    """The requests built and the code versions hashed say what the client sends."""
    from enrich_assets.defs.vlm_resource import language_settings

    s = _load(tmp_path, "vlm: {temperature: 0.7, max_tokens: 100}\n", monkeypatch)
    lang = language_settings(s)
    assert (lang.temperature, lang.max_tokens) == (0.7, 100)
    assert language_settings(_load(tmp_path, "", monkeypatch)) == LanguageSettings()


def test_consistency_gripper_channel_is_typed_and_checked(tmp_path, monkeypatch):
    s = _load(
        tmp_path, "consistency:\n  gripper_channel: {column: action, index: 3}\n", monkeypatch
    )
    channel = s.consistency.gripper_channel
    assert (channel.column, channel.index, channel.min_change) == ("action", 3, 0.05)
    assert _load(tmp_path, "", monkeypatch).consistency.gripper_channel is None
    text = "consistency:\n  gripper_channel:\n    column: action\n    index: 3\n    name: x\n"
    with pytest.raises(
        SettingsError, match=r":5: consistency.gripper_channel.name: unknown .*min_change"
    ):
        _load(tmp_path, text, monkeypatch)
    with pytest.raises(SettingsError, match=r"consistency.gripper_channel.column"):
        _load(tmp_path, "consistency: {gripper_channel: {column: state, index: 1}}\n", monkeypatch)
    with pytest.raises(SettingsError, match=r"consistency.gripper_channel.index"):
        _load(
            tmp_path, "consistency: {gripper_channel: {column: action, index: -1}}\n", monkeypatch
        )
