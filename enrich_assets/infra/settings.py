"""Every setting of a deployment, one typed model: environment variables, else the settings
file (`ENRICH_SETTINGS`, else `enrich-assets.yaml` in the working directory), else defaults.

| setting        | env var                 | default                     |
|----------------|-------------------------|-----------------------------|
| data_dir       | ENRICH_DATA_DIR         | ./data                      |
| dataset_roots  | ENRICH_DATASET_ROOTS    | (none; `:`-separated paths) |
| dagster_home   | DAGSTER_HOME            | <data_dir>/dagster_home     |
| model_profile  | ENRICH_MODEL_PROFILE    | tiny                        |
| batch_size     | ENRICH_BATCH_SIZE       | 64 episodes per run         |
| schedule_hours | ENRICH_SCHEDULE_HOURS   | 6 (`enrich_missing` period) |

Sections: `vlm:` and `vlm_secondary:` (a VLM client each, see `VLMSettings`), `language:`
(the language modules' knobs, `LanguageSection`) and `compute:` (where the vision models run,
`ComputeSettings`). Every key is checked: an unknown key, a
wrong type or malformed YAML is a `SettingsError`, one line naming file, line and key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SETTINGS_FILE = "enrich-assets.yaml"


class SettingsError(ValueError):
    """The settings file (or a settings env var) is unreadable or says something unknown."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Strict):
    """Backoff for 429 / 5xx / timeouts / invalid answers (models/vlm/openai_client.py)."""

    initial_s: float | None = None
    max_s: float | None = None
    jitter: float | None = None
    max_attempts: int | None = None


VLMBackend = Literal["openai", "local-stub", "transformers"]

# Which keys each backend reads; any other set key is an error naming it.
_VLM_COMMON = {"backend", "model", "max_repairs", "cache_dir", "budget_usd"}
_VLM_SAMPLING = {"temperature", "max_tokens"}
_VLM_HTTP = {"timeout_s", "concurrency", "retry", "json_mode", "image_format"}
VLM_BACKEND_KEYS: dict[str, set[str]] = {
    "openai": _VLM_COMMON | _VLM_SAMPLING | _VLM_HTTP | {"base_url", "base_urls", "api_key_env"},
    "local-stub": _VLM_COMMON | _VLM_SAMPLING | _VLM_HTTP | {"latency_s"},
    "transformers": _VLM_COMMON
    | _VLM_SAMPLING
    | {"device", "dtype", "random_init", "min_new_tokens"},
}


class VLMSettings(_Strict):
    """One VLM client (models/vlm/factory.py). Unset keys (None) take the client's defaults."""

    backend: VLMBackend = "local-stub"
    model: str = ""
    base_url: str = ""
    base_urls: tuple[str, ...] = ()
    api_key_env: str = ""  # the NAME of the env var holding the key, never the key
    concurrency: int | None = None
    timeout_s: float | None = None
    budget_usd: float | None = None  # per Dagster run, across all its language assets
    temperature: float | None = None  # overrides every request's
    max_tokens: int | None = None  # caps every request's
    max_repairs: int | None = None
    json_mode: bool | None = None
    image_format: Literal["png", "jpeg"] | None = None
    retry: RetrySettings | None = None
    cache_dir: str = ""
    latency_s: float | None = None  # local-stub only
    device: str | None = None  # transformers only
    dtype: str | None = None
    random_init: bool | None = None
    min_new_tokens: int | None = None

    def backend_errors(self) -> list[str]:
        """Keys set that this backend does not read."""
        allowed = VLM_BACKEND_KEYS[self.backend]
        return sorted(k for k in self.model_fields_set if k not in allowed)

    def as_config(self) -> dict[str, Any]:
        """The keys set, as plain values (what `build_client` and the resource take)."""
        data = self.model_dump(exclude_none=True, exclude_defaults=True)
        if "base_urls" in data:
            data["base_urls"] = list(data["base_urls"])
        if self.retry is not None:
            data["retry"] = self.retry.model_dump(exclude_none=True)
        if "backend" in self.model_fields_set:
            data["backend"] = self.backend
        return data


class LanguageSection(_Strict):
    """The `language:` section: any field of enrich/language/settings.py LanguageSettings
    (kept equal by a test); unset keys take LanguageSettings' defaults."""

    plan_fps: float | None = None
    max_frames_per_call: int | None = None
    max_subtasks: int | None = None
    task_aug_count: int | None = None
    derive_task: Literal["off", "if_short", "always"] | None = None
    task_min_words: int | None = None
    max_interjections: int | None = None
    interjection_min_t: float | None = None
    interjection_window_s: float | None = None
    interjection_window_frames: int | None = None
    vqa_hz: float | None = None
    vqa_types: tuple[str, ...] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ComputeSettings(_Strict):
    """Where the vision models run (models/vision/hosts.py): in the step's process (`local`), or
    in actors on a Ray cluster (`ray`), each asking for its model's `resources` (models.yaml)."""

    backend: Literal["local", "ray"] = "local"
    # "host:port" of a cluster this machine is part of, "ray://host:10001" (Ray Client) for a
    # remote one; empty: Ray's own choice ($RAY_ADDRESS, else a cluster running here)
    ray_address: str = ""
    actors_per_model: int = Field(1, ge=1)
    # an actor must be placed and have loaded its model by then (autoscaling clusters: minutes)
    actor_start_timeout_s: float = Field(600.0, gt=0)


class Settings(_Strict):
    data_dir: Path
    dataset_roots: tuple[Path, ...] = ()
    dagster_home: Path = Path()
    model_profile: str = "tiny"
    batch_size: int = 64
    # the `enrich_missing` schedule's period (defs/schedules.py): every Nth hour of the day
    schedule_hours: int = Field(6, ge=1, le=24)
    vlm: VLMSettings = VLMSettings()
    vlm_secondary: VLMSettings | None = None
    language: LanguageSection = LanguageSection()
    compute: ComputeSettings = ComputeSettings()

    def __init__(self, data_dir: Path | str | None = None, /, **values: Any) -> None:
        if data_dir is not None:
            values["data_dir"] = data_dir
        super().__init__(**values)

    @property
    def catalog_dir(self) -> Path:
        return self.data_dir / "catalog"

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "enrich.duckdb"

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "datasets.json"


FILE_KEYS = (
    "data_dir",
    "dataset_roots",
    "dagster_home",
    "model_profile",
    "batch_size",
    "schedule_hours",
)
SECTIONS = {
    "vlm": VLMSettings,
    "vlm_secondary": VLMSettings,
    "language": LanguageSection,
    "compute": ComputeSettings,
}
_ENV = {
    "data_dir": "ENRICH_DATA_DIR",
    "dataset_roots": "ENRICH_DATASET_ROOTS",
    "dagster_home": "DAGSTER_HOME",
    "model_profile": "ENRICH_MODEL_PROFILE",
    "batch_size": "ENRICH_BATCH_SIZE",
    "schedule_hours": "ENRICH_SCHEDULE_HOURS",
}


def settings_path(cwd: Path | None = None) -> Path:
    return Path(os.environ.get("ENRICH_SETTINGS") or (cwd or Path.cwd()) / SETTINGS_FILE)


def load_settings(cwd: Path | None = None) -> Settings:
    """Environment over file over defaults; raises SettingsError (one line) on any bad key."""
    cwd = cwd or Path.cwd()
    path = settings_path(cwd)
    text = path.read_text() if path.is_file() else ""
    file = _parse(path, text)
    env = os.environ
    values: dict[str, Any] = {k: v for k, v in file.items() if v is not None}
    for key in ("model_profile", "batch_size", "schedule_hours", "dagster_home", "data_dir"):
        if env.get(_ENV[key]):
            values[key] = env[_ENV[key]]
    if roots := env.get("ENRICH_DATASET_ROOTS"):
        values["dataset_roots"] = roots.split(os.pathsep)
    data_dir = Path(values.get("data_dir") or cwd / "data")
    values["data_dir"] = (cwd / data_dir).resolve() if not data_dir.is_absolute() else data_dir
    values["dataset_roots"] = [Path(r).resolve() for r in values.get("dataset_roots") or [] if r]
    values.setdefault("dagster_home", values["data_dir"] / "dagster_home")
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise _error(path, text, exc) from None
    for name in ("vlm", "vlm_secondary"):
        section = getattr(settings, name)
        if section is not None and (bad := section.backend_errors()):
            where = _line(text, (name, bad[0]))
            reads = ", ".join(sorted(VLM_BACKEND_KEYS[section.backend]))
            raise SettingsError(
                f"{_where(path, where)}{name}.{bad[0]}: not a setting of backend "
                f"{section.backend!r} (it reads: {reads})"
            )
    return settings


def _parse(path: Path, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as exc:
        # where the construct that went wrong began (an unclosed bracket), else the problem
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(f"{path}:{line} malformed YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}:1: the settings file must be a mapping of keys")
    return data


def _error(path: Path, text: str, exc: ValidationError) -> SettingsError:
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    key = ".".join(loc) or "(top level)"
    env = _ENV.get(loc[0]) if loc else None
    if env and os.environ.get(env):
        return SettingsError(f"{env}={os.environ[env]!r}: {err['msg']}")
    if err["type"] == "extra_forbidden":
        models = {**SECTIONS, "retry": RetrySettings}
        model: type[BaseModel] = models.get(loc[-2], Settings) if len(loc) > 1 else Settings
        known = ", ".join(model.model_fields)
        msg = f"unknown setting (known: {known})"
    else:
        msg = err["msg"]
    return SettingsError(f"{_where(path, _line(text, loc))}{key}: {msg}")


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}: " if line else f"{path}: "


def _line(text: str, loc: tuple[str, ...]) -> int | None:
    """The line of the deepest key of `loc` found in the YAML text (1-based)."""
    try:
        node = yaml.compose(text) if text else None
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        for key, value in node.value:
            if str(key.value) == part:
                line, node = key.start_mark.line + 1, value
                break
        else:
            break
    return line
