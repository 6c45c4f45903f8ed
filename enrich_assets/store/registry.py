"""Which datasets the pipeline knows, under which id (the first part of partition keys).

A dataset is known by its location: an absolute path (a LeRobot root, an HDF5 file or
folder, ...) or a URL (a SQL table); `datasets.open.open_dataset` reads either.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from enrich_assets.datasets.open import is_url, location_exists, normalize_location
from enrich_assets.infra.files import file_lock, write_text_atomic

VERSION = re.compile(r"\d+(\.\d+)+")


def location_name(location: str) -> str:
    """The readable part of a location the id is made from: a path's last part (a versioned
    folder such as a TFDS builder's `bridge/0.1.0` with its parent's: `bridge_0.1.0`), or a
    URL's database name and table."""
    if not is_url(location):
        path = Path(location)
        return f"{path.parent.name}_{path.name}" if VERSION.fullmatch(path.name) else path.name
    parts = urlsplit(location)
    table = parse_qs(parts.query).get("table", [""])[0]
    return "_".join(p for p in (Path(parts.path).stem, table) if p)


class DatasetRegistry:
    """A small JSON file `{dataset_id: location}`, updated under a file lock, replaced
    atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        return {k: str(v) for k, v in json.loads(self.path.read_text()).items()}

    def location_of(self, dataset_id: str) -> str:
        locations = self.load()
        if dataset_id not in locations:
            raise KeyError(f"dataset {dataset_id!r} is not registered in {self.path}")
        return locations[dataset_id]

    def register(self, location: str | Path) -> str:
        """The id of `location`, registering it if new: its name (`location_name`), made
        unique if taken. A name whose old location no longer exists is taken over."""
        location = normalize_location(location)
        with self._locked():
            known = self.load()
            for dataset_id, there in known.items():
                if there == location:
                    return dataset_id
            name = location_name(location)
            dataset_id = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "dataset"
            if dataset_id in known and location_exists(known[dataset_id]):
                digest = hashlib.sha1(location.encode()).hexdigest()[:6]
                dataset_id = f"{dataset_id}_{digest}"
            known[dataset_id] = location
            self._save(known)
            return dataset_id

    @contextmanager
    def _locked(self):  # noqa: ANN202
        with file_lock(self.path.with_suffix(".lock")):
            yield

    def _save(self, locations: dict[str, str]) -> None:
        write_text_atomic(self.path, json.dumps(dict(sorted(locations.items())), indent=1))
