"""Which dataset roots the pipeline knows, under which id (the first part of partition keys)."""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from pathlib import Path

from enrich_assets.infra.files import file_lock, write_text_atomic


class DatasetRegistry:
    """A small JSON file `{dataset_id: root}`, updated under a file lock, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Path]:
        if not self.path.is_file():
            return {}
        return {k: Path(v) for k, v in json.loads(self.path.read_text()).items()}

    def root_of(self, dataset_id: str) -> Path:
        roots = self.load()
        if dataset_id not in roots:
            raise KeyError(f"dataset {dataset_id!r} is not registered in {self.path}")
        return roots[dataset_id]

    def register(self, root: Path) -> str:
        """The id of `root`, registering it if new: its folder name, made unique if taken.

        A name whose old root no longer exists is taken over by the new root.
        """
        root = root.resolve()
        with self._locked():
            roots = self.load()
            for dataset_id, known in roots.items():
                if known == root:
                    return dataset_id
            dataset_id = re.sub(r"[^A-Za-z0-9_]+", "_", root.name).strip("_") or "dataset"
            if dataset_id in roots and roots[dataset_id].exists():
                dataset_id = f"{dataset_id}_{hashlib.sha1(str(root).encode()).hexdigest()[:6]}"
            roots[dataset_id] = root
            self._save(roots)
            return dataset_id

    @contextmanager
    def _locked(self):  # noqa: ANN202
        with file_lock(self.path.with_suffix(".lock")):
            yield

    def _save(self, roots: dict[str, Path]) -> None:
        text = json.dumps({k: str(v) for k, v in sorted(roots.items())}, indent=1)
        write_text_atomic(self.path, text)
