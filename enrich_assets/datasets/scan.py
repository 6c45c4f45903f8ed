"""Cheap change detection for dataset roots: a signature of the metadata files' sizes and times."""

from __future__ import annotations

import hashlib
from pathlib import Path

META_GLOBS = ("meta/info.json", "meta/episodes.jsonl", "meta/episodes/*/*.parquet")


def metadata_signature(root: Path) -> str:
    """Changes whenever LeRobot appends episodes (it rewrites these files), without reading them."""
    digest = hashlib.sha256()
    for pattern in META_GLOBS:
        for path in sorted(root.glob(pattern)):
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
