"""Where things live: from environment variables, else `enrich-assets.yaml`, else under data/.

| setting        | env var                 | default                     |
|----------------|-------------------------|-----------------------------|
| data_dir       | ENRICH_DATA_DIR         | ./data                      |
| dataset_roots  | ENRICH_DATASET_ROOTS    | (none; `:`-separated paths) |
| dagster_home   | DAGSTER_HOME            | <data_dir>/dagster_home     |
| model_profile  | ENRICH_MODEL_PROFILE    | tiny                        |
| batch_size     | ENRICH_BATCH_SIZE       | 64 episodes per run         |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SETTINGS_FILE = "enrich-assets.yaml"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    dataset_roots: tuple[Path, ...] = ()
    dagster_home: Path = field(default=Path())
    model_profile: str = "tiny"
    batch_size: int = 64

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


def load_settings(cwd: Path | None = None) -> Settings:
    cwd = cwd or Path.cwd()
    path = Path(os.environ.get("ENRICH_SETTINGS", cwd / SETTINGS_FILE))
    file = yaml.safe_load(path.read_text()) or {} if path.is_file() else {}
    env = os.environ
    data_dir = Path(env.get("ENRICH_DATA_DIR") or file.get("data_dir") or cwd / "data")
    data_dir = (cwd / data_dir).resolve() if not data_dir.is_absolute() else data_dir
    roots = env.get("ENRICH_DATASET_ROOTS")
    dataset_roots = roots.split(os.pathsep) if roots else file.get("dataset_roots", [])
    return Settings(
        data_dir=data_dir,
        dataset_roots=tuple(Path(r).resolve() for r in dataset_roots if r),
        dagster_home=Path(env.get("DAGSTER_HOME") or data_dir / "dagster_home"),
        model_profile=env.get("ENRICH_MODEL_PROFILE") or file.get("model_profile", "tiny"),
        batch_size=int(env.get("ENRICH_BATCH_SIZE") or file.get("batch_size", 64)),
    )
