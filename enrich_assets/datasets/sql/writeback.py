"""Results written back into the source table as columns, the guide's incremental pattern.

Per column (one enrichment step each) the work is found with
`SELECT id, episode_id, frame_index FROM t WHERE <column> IS NULL AND id > :checkpoint
ORDER BY id LIMIT 1000`, and each batch is one transaction: the updates of up to 1,000 rows
and the step's checkpoint (`enrich_checkpoints`: the last id done). A crash loses at most the
batch in flight; the next run resumes after the checkpoint. A finished pass resets the
checkpoint, so rows whose results arrive later (an episode enriched afterwards) are found
by the next run. Rows already filled are never touched: a run with nothing new updates no
row. A column missing from the table is added first (the migration): declaring a new one in
schemas/enrichment.yaml (`sql_writeback`) fills it for every existing row, batch by batch,
while new rows keep arriving.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from enrich_assets.datasets.sql.reader import open_table
from enrich_assets.datasets.sql.source import SqlSource
from enrich_assets.infra.schema import load_yaml

BATCH_ROWS = 1000
CHECKPOINTS = "enrich_checkpoints"

# (episode_index, frame_index) -> the catalog's value for that keyframe
Lookup = Callable[[Sequence[tuple[int, int]]], Mapping[tuple[int, int], Any]]


@dataclass(frozen=True)
class WritebackColumn:
    name: str
    dtype: str  # the catalog dtype (schemas/enrichment.yaml)


def column_type(dtype: str, dialect: str) -> sa.types.TypeEngine:
    """The SQL type a catalog dtype gets in `dialect`: native arrays and JSONB on PostgreSQL,
    arrays on DuckDB, JSON text where the database has neither (SQLite)."""
    scalar = {"string": sa.Text(), "int64": sa.BigInteger(), "bool": sa.Boolean()}
    if dtype in scalar:
        return scalar[dtype]
    if dtype in ("float32", "float64"):
        return sa.Float()
    if dtype == "json":
        return postgresql.JSONB() if dialect == "postgresql" else sa.Text()
    if dtype.startswith("list<"):
        inner = sa.Text() if dtype == "list<string>" else sa.Float()
        return sa.ARRAY(inner) if dialect in ("postgresql", "duckdb") else sa.Text()
    raise ValueError(f"no SQL type for catalog dtype {dtype!r}")


def encode(value: Any, dtype: str, dialect: str) -> Any:  # noqa: ANN401 - a column value
    """A catalog value as the column type above stores it."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if dtype == "json":
        return json.loads(value) if dialect == "postgresql" else value
    if dtype.startswith("list<"):
        items = list(value)
        return items if dialect in ("postgresql", "duckdb") else json.dumps(items)
    return value


def migrate(engine: sa.Engine, source: SqlSource, columns: Sequence[WritebackColumn]) -> list[str]:
    """Add the columns the table lacks (and the checkpoint table); the names added."""
    table = open_table(source, engine, source.table)
    dialect = engine.dialect.name
    added = []
    with engine.begin() as con:
        for column in columns:
            if column.name in table.c:
                continue
            ddl = sa.schema.CreateColumn(sa.Column(column.name, column_type(column.dtype, dialect)))
            spec = ddl.compile(dialect=engine.dialect)
            con.execute(sa.text(f"ALTER TABLE {_quoted(engine, source.table)} ADD COLUMN {spec}"))
            added.append(column.name)
    checkpoint_table().create(engine, checkfirst=True)
    return added


def _quoted(engine: sa.Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)


def checkpoint_table() -> sa.Table:
    return sa.Table(
        CHECKPOINTS,
        sa.MetaData(),
        sa.Column("source_table", sa.Text, primary_key=True),
        sa.Column("step", sa.Text, primary_key=True),
        sa.Column("last_id", sa.BigInteger, nullable=True),
        sa.Column("rows_written", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )


@dataclass
class ColumnReport:
    written: int = 0  # rows updated
    batches: int = 0  # transactions that wrote something
    waiting: int = 0  # rows still NULL: their episode has no result (yet)
    resumed_from: int | None = None


@dataclass
class WritebackReport:
    added_columns: list[str] = field(default_factory=list)
    columns: dict[str, ColumnReport] = field(default_factory=dict)

    @property
    def written(self) -> int:
        return sum(c.written for c in self.columns.values())


def _checkpoint(con: sa.Connection, table: str, step: str) -> sa.Row | None:
    cp = checkpoint_table()
    query = sa.select(cp.c.last_id, cp.c.rows_written).where(
        cp.c.source_table == table, cp.c.step == step
    )
    return con.execute(query).first()


def _save_checkpoint(
    con: sa.Connection, table: str, step: str, last_id: int | None, written: int
) -> None:
    cp = checkpoint_table()
    now = datetime.now(UTC).isoformat()
    # delete + insert, not UPDATE-then-INSERT on rowcount: not every driver reports rowcount
    # (duckdb_engine gives -1)
    con.execute(sa.delete(cp).where(cp.c.source_table == table, cp.c.step == step))
    con.execute(
        sa.insert(cp).values(
            source_table=table, step=step, last_id=last_id, rows_written=written, updated_at=now
        )
    )


def fill_column(
    engine: sa.Engine,
    source: SqlSource,
    column: WritebackColumn,
    episode_index: Mapping[Any, int],
    lookup: Lookup,
    batch_rows: int = BATCH_ROWS,
) -> ColumnReport:
    """Fill `column` where it is NULL and the catalog has a value, `batch_rows` per transaction."""
    table = open_table(source, engine, source.table)
    dialect = engine.dialect.name
    row_id, episode, frame = (
        table.c[source.columns[r]] for r in ("id", "episode_id", "frame_index")
    )
    target = table.c[column.name]
    update = (
        sa.update(table)
        .where(row_id == sa.bindparam("_id"))
        .values({column.name: sa.bindparam("_value", type_=column_type(column.dtype, dialect))})
    )
    report = ColumnReport()
    with engine.connect() as con:
        saved = _checkpoint(con, source.table, column.name)
    last = saved.last_id if saved else None
    total = saved.rows_written if saved else 0
    report.resumed_from = last
    while True:
        query = sa.select(row_id, episode, frame).where(target.is_(None))
        if last is not None:
            query = query.where(row_id > last)
        with engine.connect() as con:
            rows = list(con.execute(query.order_by(row_id).limit(batch_rows)))
        if not rows:
            break
        keys = [(episode_index.get(r[1], -1), int(r[2])) for r in rows]
        values = lookup(keys)
        updates = [
            {"_id": r[0], "_value": encode(values[k], column.dtype, dialect)}
            for r, k in zip(rows, keys, strict=True)
            if values.get(k) is not None
        ]
        report.waiting += len(rows) - len(updates)
        last = rows[-1][0]
        if updates:
            total += len(updates)
            with engine.begin() as con:  # the batch and its checkpoint, or neither
                con.execute(update, updates)
                _save_checkpoint(con, source.table, column.name, last, total)
            report.written += len(updates)
            report.batches += 1
    if report.written or (saved and saved.last_id is not None):
        with engine.begin() as con:  # the pass is complete: the next one starts from the top
            _save_checkpoint(con, source.table, column.name, None, total)
    return report


def write_back(
    source: SqlSource,
    columns: Sequence[WritebackColumn],
    episode_index: Mapping[Any, int],
    lookups: Mapping[str, Lookup],
    batch_rows: int = BATCH_ROWS,
) -> WritebackReport:
    """Migrate, then fill every column."""
    engine = source.engine()
    try:
        report = WritebackReport(added_columns=migrate(engine, source, columns))
        for column in columns:
            report.columns[column.name] = fill_column(
                engine, source, column, episode_index, lookups[column.name], batch_rows
            )
        return report
    finally:
        engine.dispose()


def declared_columns() -> list[tuple[str, WritebackColumn]]:
    """(catalog table, column) pairs that `sql_writeback` in schemas/enrichment.yaml names."""
    spec = load_yaml("enrichment.yaml")
    out = []
    for entry in spec.get("sql_writeback", []):
        table, _, name = entry.partition(".")
        columns = {c["name"]: c for c in spec["tables"].get(table, [])}
        if name not in columns:
            raise RuntimeError(f"schemas/enrichment.yaml: sql_writeback names unknown {entry!r}")
        out.append((table, WritebackColumn(name, columns[name]["dtype"])))
    return out
