"""Where the repository's own files are: schemas/, prompts/, data/golden/, dagster.yaml.

One place computes the repo root, so moving a module never breaks a path. `schemas/` and
`prompts/` can be pointed elsewhere (`ENRICH_SCHEMAS_DIR`, `ENRICH_PROMPTS_DIR`).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMPTS_DIR = REPO_ROOT / "prompts"
GOLDEN_DIR = REPO_ROOT / "data" / "golden"
DAGSTER_YAML = REPO_ROOT / "dagster.yaml"


def schemas_dir() -> Path:
    """schemas/ of the repo, or ENRICH_SCHEMAS_DIR."""
    return Path(os.environ.get("ENRICH_SCHEMAS_DIR") or REPO_ROOT / "schemas")


def schema_file(name: str) -> Path:
    return schemas_dir() / name


def prompts_dir() -> Path:
    """prompts/ of the repo, or ENRICH_PROMPTS_DIR (to try edited prompts without a commit)."""
    return Path(os.environ.get("ENRICH_PROMPTS_DIR") or PROMPTS_DIR)
