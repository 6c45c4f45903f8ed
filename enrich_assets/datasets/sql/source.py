"""Where a SQL dataset lives: a SQLAlchemy URL whose query names the table and its columns.

    sqlite:///clips.db?table=clips
    duckdb:///frames.duckdb?table=frames&image=frame_data
    postgresql://robot@127.0.0.1:5432/robot?table=clips

Every key below is optional but `table`; a key we do not know is an error (a typo would
otherwise read the wrong column). Passwords never go in the URL (it is logged and stored in
the dataset registry): PostgreSQL takes `PGPASSWORD` (or `~/.pgpass`) from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

from enrich_assets.datasets.errors import DatasetError

SCHEMES = ("sqlite", "duckdb", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")
# column role -> default column name
COLUMNS = {
    "id": "id",
    "episode_id": "episode_id",
    "frame_index": "frame_index",
    "timestamp": "timestamp",
    "image": "image",
    "task": "task",
}
OPTIONS = ("table", "image_kind", "image_root", "fps", "state", "action", *COLUMNS)
IMAGE_KINDS = ("bytes", "path")


@dataclass(frozen=True)
class SqlSource:
    """A parsed SQL dataset location."""

    engine_url: str  # what SQLAlchemy connects to (our keys removed)
    table: str
    columns: dict[str, str]  # role -> column name
    image_kind: str = "bytes"  # the image column holds encoded bytes, or a file path / URI
    image_root: Path | None = None  # relative image paths are under this (default: the cwd)
    fps: float | None = None  # None: derived from frame_index / timestamp
    state: str | None = None  # optional columns holding a JSON / array vector per frame
    action: str | None = None

    @property
    def camera(self) -> str:
        """One image column is one camera, named after the column."""
        return self.columns["image"]

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.engine_url, poolclass=sa.pool.NullPool)


def is_sql_url(location: str) -> bool:
    return urlsplit(location).scheme in SCHEMES


def _url(location: str) -> sa.URL:
    try:
        return sa.engine.make_url(location)
    except sa.exc.ArgumentError as exc:
        raise DatasetError(location, f"not a valid SQLAlchemy URL ({exc})") from exc


def normalize_sql_url(location: str) -> str:
    """File databases get an absolute path, so one table has one dataset id."""
    url = _url(location)
    if url.get_backend_name() in ("sqlite", "duckdb") and url.database not in (
        None,
        "",
        ":memory:",
    ):
        url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=False)


def parse_sql_location(location: str) -> SqlSource:
    """The table and columns a URL names; DatasetError (one line) when it is not usable."""
    if not is_sql_url(location):
        raise DatasetError(location, f"not a SQL URL this tool reads ({', '.join(SCHEMES)})")
    url = _url(location)
    if url.password:
        raise DatasetError(
            url.render_as_string(hide_password=True),
            "has a password in the URL: set it in the environment (PGPASSWORD) instead",
        )
    query = {k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()}
    unknown = sorted(set(query) - set(OPTIONS))
    if unknown:
        raise DatasetError(
            location, f"unknown URL option(s) {unknown}; known: {', '.join(OPTIONS)}"
        )
    if not query.get("table"):
        raise DatasetError(location, "names no table: add ?table=<name>")
    kind = query.get("image_kind", "bytes")
    if kind not in IMAGE_KINDS:
        raise DatasetError(location, f"image_kind must be one of {IMAGE_KINDS}, got {kind!r}")
    try:
        fps = float(query["fps"]) if "fps" in query else None
    except ValueError as exc:
        raise DatasetError(location, f"fps is not a number: {query['fps']!r}") from exc
    engine_url = url.set(query={}).render_as_string(hide_password=False)
    return SqlSource(
        engine_url=engine_url,
        table=query["table"],
        columns={role: query.get(role, name) for role, name in COLUMNS.items()},
        image_kind=kind,
        image_root=Path(query["image_root"]) if "image_root" in query else None,
        fps=fps,
        state=query.get("state"),
        action=query.get("action"),
    )


def with_options(location: str, **options: str) -> str:
    """`location` with more query options (tests and docs build URLs with it)."""
    url = _url(location)
    return url.update_query_dict(options).render_as_string(hide_password=False)
