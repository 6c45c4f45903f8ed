"""Per-episode JSONL staging in lerobot's layout:
`<root>/.annotate_staging/episode_{N:06d}/{plan,interjections,vqa}.jsonl`.

Each module owns one file, replaced atomically, so re-running one module never touches
another's output and a crash never leaves half a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from enrich_assets.datasets.lerobot.language_format import MODULES, LanguageRow
from enrich_assets.infra.files import write_text_atomic

STAGING_DIR = ".annotate_staging"


def staging_path(dataset_root: Path, episode_index: int, module: str) -> Path:
    if module not in MODULES:
        raise ValueError(f"unknown language module {module!r}; expected one of {MODULES}")
    return dataset_root / STAGING_DIR / f"episode_{episode_index:06d}" / f"{module}.jsonl"


def write_staged(
    dataset_root: Path, episode_index: int, module: str, rows: Sequence[LanguageRow]
) -> Path:
    path = staging_path(dataset_root, episode_index, module)
    lines = [json.dumps(row.to_dict(), ensure_ascii=False, sort_keys=True) + "\n" for row in rows]
    write_text_atomic(path, "".join(lines))
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


def rewrite_staged(dataset_root: Path, fix: Callable[[LanguageRow], LanguageRow]) -> int:
    """Pass every staged row through `fix`; replace (atomically) only the files in which
    some row changed. The number of files replaced."""
    replaced = 0
    for folder in sorted((dataset_root / STAGING_DIR).glob("episode_*")):
        episode_index = int(folder.name.removeprefix("episode_"))
        for module in staged_modules(dataset_root, episode_index):
            rows = read_staged(dataset_root, episode_index, module)
            fixed = [fix(row) for row in rows]
            if fixed != rows:
                write_staged(dataset_root, episode_index, module, fixed)
                replaced += 1
    return replaced
