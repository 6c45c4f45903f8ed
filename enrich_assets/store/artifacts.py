"""Big arrays (keyframe images, depth maps) as files named by their content hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

from enrich_assets.infra.files import write_bytes_atomic


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_artifact(root: Path, kind: str, data: bytes, suffix: str) -> Path:
    """Write `data` once under root/kind/ab/<sha256><suffix>; same content, same file.

    Written to a temporary file and renamed, so a reader never sees half a file.
    Returns the path relative to `root`.
    """
    digest = content_hash(data)
    rel = Path(kind) / digest[:2] / f"{digest}{suffix}"
    path = root / rel
    if not path.exists():
        write_bytes_atomic(path, data)
    return rel
