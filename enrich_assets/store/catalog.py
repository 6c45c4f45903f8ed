"""The catalog: one parquet file per (table, dataset, part), DuckDB views over them.

Why files and views rather than DuckDB tables: DuckDB allows one writer per database
file, and two runs (a backfill and the sensor's) write at once. Each partition's rows
are a file written to a temporary name and renamed, so writers never lock each other,
re-running a partition replaces its file (idempotent), and a failed run leaves the
previous file in place. `enrich.duckdb` holds only views, for people and tools to query.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from enrich_assets.infra.files import atomic_write

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

_log = logging.getLogger(__name__)


class Catalog:
    def __init__(self, root: Path, duckdb_path: Path) -> None:
        self.root = root
        self.duckdb_path = duckdb_path

    def _path(self, table: str, dataset_id: str, part: str) -> Path:
        for name in (table, dataset_id, part):
            if not _NAME.match(name):
                raise ValueError(f"catalog name {name!r} must be letters, digits, '_', '.', '-'")
        return self.root / table / dataset_id / f"{part}.parquet"

    def write(self, table: str, dataset_id: str, part: str, rows: pa.Table | pl.DataFrame) -> Path:
        """Replace one part of a table, atomically."""
        data = rows.to_arrow() if isinstance(rows, pl.DataFrame) else rows
        path = self._path(table, dataset_id, part)
        return atomic_write(path, lambda tmp: pq.write_table(data, tmp))

    def delete(self, table: str, dataset_id: str, part: str) -> None:
        self._path(table, dataset_id, part).unlink(missing_ok=True)

    def _glob(self, table: str, dataset_id: str | None = None) -> str:
        return str(self.root / table / (dataset_id or "*") / "*.parquet")

    def has(self, table: str, dataset_id: str | None = None) -> bool:
        return any((self.root / table).glob(f"{dataset_id or '*'}/*.parquet"))

    def read(self, table: str, dataset_id: str | None = None, where: str = "true") -> pl.DataFrame:
        """Rows of a table (optionally one dataset's), or an empty frame if none were written."""
        if not self.has(table, dataset_id):
            return pl.DataFrame()
        with duckdb.connect() as conn:
            query = (
                f"SELECT * FROM read_parquet('{self._glob(table, dataset_id)}', union_by_name=true)"
            )
            return conn.sql(f"{query} WHERE {where}").pl()

    def read_part(self, table: str, dataset_id: str, part: str) -> pl.DataFrame:
        """One part's rows (one episode's, for per-episode tables), without scanning the rest."""
        path = self._path(table, dataset_id, part)
        return pl.read_parquet(path) if path.is_file() else pl.DataFrame()

    def tables(self) -> list[str]:
        return sorted(p.name for p in self.root.glob("*") if p.is_dir() and self.has(p.name))

    def refresh_views(
        self,
        derived: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
        missing_only: bool = False,
    ) -> list[str]:
        """(Re)create one view per table in the DuckDB file, waiting out other writers' locks.

        `derived`: table name -> SQL creating further views over that table's view, run when
        the table exists (e.g. the weekly cost view over the VLM ledger). `missing_only`: only
        for tables that have no view yet — a view re-reads its files' glob at every query, so
        one is enough, while creating it reads the schema of every file written so far.
        """
        tables = self.tables()
        if missing_only:
            tables = [t for t in tables if t not in self._views()]
            if not tables:
                return []
        self.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with duckdb.connect(str(self.duckdb_path)) as conn:
                    for table in tables:
                        conn.execute(
                            f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM '
                            f"read_parquet('{self._glob(table)}', union_by_name=true)"
                        )
                    for table, sql in (derived or {}).items():
                        if table in tables:
                            conn.execute(sql)
                return tables
            except duckdb.IOException as exc:
                if "created with a newer version of DuckDB" in str(exc):
                    self._set_aside(exc)
                    continue
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _views(self) -> set[str]:
        if not self.duckdb_path.is_file():
            return set()
        try:
            with duckdb.connect(str(self.duckdb_path), read_only=True) as conn:
                rows = conn.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")
                return {r[0] for r in rows.fetchall()}
        except duckdb.Error:  # locked or unreadable: treat as none, refresh_views decides
            return set()

    def _set_aside(self, exc: duckdb.IOException) -> None:
        """The DuckDB file holds only views over the parquet catalog, so one a newer DuckDB
        wrote is rebuilt, not an error; it is renamed aside (never deleted), in case someone
        kept their own tables in it, and the rename is logged."""
        aside = self.duckdb_path.with_name(
            f"{self.duckdb_path.name}.newer-duckdb-{time.strftime('%Y%m%dT%H%M%S')}"
        )
        self.duckdb_path.rename(aside)
        wal = self.duckdb_path.with_name(self.duckdb_path.name + ".wal")
        if wal.exists():
            wal.rename(aside.with_name(aside.name + ".wal"))
        _log.warning(
            "%s: %s; moved to %s and rebuilt", self.duckdb_path, str(exc).splitlines()[0], aside
        )
