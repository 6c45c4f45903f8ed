"""Per-episode JSONL staging in lerobot's layout:
`<root>/.annotate_staging/episode_{N:06d}/{plan,interjections,vqa}.jsonl`.

Each module owns one file, replaced atomically, so re-running one module never touches
another's output and a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from enrich_assets.enrich.language.rows import MODULES, LanguageRow

STAGING_DIR = ".annotate_staging"


def staging_path(dataset_root: Path, episode_index: int, module: str) -> Path:
    if module not in MODULES:
        raise ValueError(f"unknown language module {module!r}; expected one of {MODULES}")
    return dataset_root / STAGING_DIR / f"episode_{episode_index:06d}" / f"{module}.jsonl"


def write_staged(
    dataset_root: Path, episode_index: int, module: str, rows: Sequence[LanguageRow]
) -> Path:
    path = staging_path(dataset_root, episode_index, module)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{module}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def read_staged(dataset_root: Path, episode_index: int, module: str) -> list[LanguageRow]:
    """The module's rows for the episode; [] when it has not been staged."""
    path = staging_path(dataset_root, episode_index, module)
    if not path.exists():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(LanguageRow.from_dict(json.loads(line)))
            except ValueError as err:
                raise ValueError(f"{path}:{n}: {err}") from err
    return rows


def read_episode(dataset_root: Path, episode_index: int) -> dict[str, list[LanguageRow]]:
    return {m: read_staged(dataset_root, episode_index, m) for m in MODULES}


def staged_modules(dataset_root: Path, episode_index: int) -> list[str]:
    """Modules that have staged this episode (an empty file counts: the module ran)."""
    return [m for m in MODULES if staging_path(dataset_root, episode_index, m).exists()]
