"""Files written whole or not at all, and exclusive locks: the one home of both.

Every write goes to a temporary file beside its target (`.tmp-<name>-<random>.partial`,
which no reader's glob matches), then `os.replace`: a reader never sees half a file, two
writers never clash, and a crash leaves only a temporary file that `remove_stale_temp_files`
clears at the next start.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_PREFIX = ".tmp-"
TEMP_SUFFIX = ".partial"


def atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Call `write(temporary_path)`, then rename it over `path`; on any error nothing changes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}-", suffix=TEMP_SUFFIX
    )
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing), held for the `with` block.

    Across processes (flock); released by the kernel if the holder dies.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_temp_files(root: Path, older_than_s: float = 3600.0) -> list[Path]:
    """Delete temporary files a crashed writer left under `root` (older than the cutoff, so
    a writer still running keeps its own). Returns what was removed."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    cutoff = time.time() - older_than_s
    for tmp in root.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        try:
            if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def describe_os_error(exc: BaseException, data_dir: Path) -> str:
    """One line naming the path and the cause of a storage error (no traceback).

    SQLite reports a full disk as "disk I/O error" without a path: then the data folder and
    its free space are named."""
    import errno
    import shutil

    causes = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EROFS: "read-only file system",
    }
    code = getattr(exc, "errno", None)
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    path = getattr(exc, "filename", None) or data_dir
    if code in causes:
        return f"{path}: {causes[code]}"
    try:
        free = shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent).free
    except OSError:
        free = None
    if free is not None and free < 1 << 20:
        return f"{data_dir}: no space left on device ({free} bytes free): {first}"
    return f"{path}: {first}"


def stat_signature(base: Path, paths: Iterable[Path]) -> str:
    """A cheap signature of files (names, sizes, modification times) that changes whenever one
    is added, removed or rewritten, without reading them."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = path.stat()
        digest.update(f"{path.relative_to(base)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
