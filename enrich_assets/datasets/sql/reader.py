"""A reader for a SQL table of frames: one row per frame, grouped into episodes by a column.

The table's rows are the frames someone chose to keep (a `clips` table), so every row is a
keyframe (`EpisodeRef.every_frame_is_keyframe`) and each result can be written back to its
row. Episode indices are the `episode_id` values when those are integers, else their rank in
sorted order. Listing is one GROUP BY; frames are read by row id, only those asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.frames import FrameInfo, vector_column
from enrich_assets.datasets.image_bytes import decode_image, image_kind
from enrich_assets.datasets.sql.source import SqlSource, parse_sql_location

REQUIRED = ("id", "episode_id", "frame_index", "image")  # timestamp and task are optional


def open_table(source: SqlSource, engine: sa.Engine, where: str) -> sa.TableClause:
    """The table with the columns the database reports for it; DatasetError naming what is
    missing. Column names come from the result of a `LIMIT 0` query, not from reflection,
    which not every dialect implements (duckdb_engine on SQLAlchemy 2.1)."""
    probe = sa.select(sa.text("*")).select_from(sa.table(source.table)).limit(0)
    try:
        with engine.connect() as con:
            names = list(con.execute(probe).keys())
    except sa.exc.SQLAlchemyError as exc:
        if not sa.inspect(engine).has_table(source.table):
            raise DatasetError(where, f"has no table {source.table!r}") from exc
        raise DatasetError(where, f"cannot read the table ({type(exc).__name__})") from exc
    wanted = [source.columns[r] for r in REQUIRED] + [c for c in (source.state, source.action) if c]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DatasetError(
            where,
            f"table {source.table!r} lacks column(s) {missing}; name yours in the URL, "
            "e.g. &image=frame_data",
        )
    return sa.table(source.table, *(sa.column(n) for n in names))


def _vector(value: object) -> list[float]:
    return json.loads(value) if isinstance(value, str | bytes) else list(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SqlEpisode:
    """How to find one episode's rows."""

    source: SqlSource
    episode_id: object  # the episode_id value as the database holds it
    where: str  # the URL (no secrets) and table, for errors


class _Rows:
    """Shared engine and table for the per-episode readers of one dataset."""

    def __init__(self, source: SqlSource, where: str) -> None:
        self.source, self.where = source, where

    @cached_property
    def engine(self) -> sa.Engine:
        return self.source.engine()

    @cached_property
    def table(self) -> sa.TableClause:
        return open_table(self.source, self.engine, self.where)

    def col(self, role: str) -> sa.ColumnClause:
        return self.table.c[self.source.columns[role]]


@dataclass(frozen=True)
class SqlRows:
    """One episode's per-frame rows (a `FrameTable`)."""

    db: _Rows
    episode_id: object
    episode_index: int
    fps: float

    @property
    def location(self) -> str:
        return f"{self.db.where} episode_id={self.episode_id!r}"

    def ids(self) -> list[int]:
        return [r[0] for r in self._select([self.db.col("id")])]

    def _select(self, cols: list[sa.ColumnClause]) -> list[sa.Row]:
        db = self.db
        query = (
            sa.select(*cols)
            .where(db.col("episode_id") == self.episode_id)
            .order_by(db.col("frame_index"), db.col("id"))
        )
        try:
            with db.engine.connect() as con:
                return list(con.execute(query))
        except sa.exc.SQLAlchemyError as exc:
            raise EpisodeError(self.location, f"cannot read rows ({type(exc).__name__})") from exc

    def read(self, columns: Sequence[str]) -> pa.Table:
        db, source = self.db, self.db.source
        cols = [db.col("frame_index")]
        has_time = source.columns["timestamp"] in db.table.c
        if has_time:
            cols.append(db.col("timestamp"))
        vectors = {
            name: db.table.c[column]
            for name, column in (("observation.state", source.state), ("action", source.action))
            if column and name in columns
        }
        rows = self._select(cols + list(vectors.values()))
        if not rows:
            raise EpisodeError(self.location, "has no rows")
        frame_index = np.array([r[0] for r in rows], np.int64)
        if len(set(frame_index.tolist())) != len(frame_index):
            raise EpisodeError(self.location, "has two rows with the same frame_index")
        if has_time and all(r[1] is not None for r in rows):
            timestamp = np.array([r[1] for r in rows], np.float32)
        else:
            timestamp = (frame_index / self.fps).astype(np.float32)
        out: dict[str, pa.Array] = {"frame_index": pa.array(frame_index)}
        if "timestamp" in columns:
            out["timestamp"] = pa.array(timestamp)
        if "episode_index" in columns:
            out["episode_index"] = pa.array(np.full(len(rows), self.episode_index, np.int64))
        first = len(cols)
        for offset, name in enumerate(vectors):
            values = np.array([_vector(r[first + offset]) for r in rows], np.float32)
            out[name] = vector_column(values)
        return pa.table(out)


@dataclass(frozen=True)
class SqlFrames:
    """One episode's images (a `FrameSource`): bytes in the image column, or paths to files."""

    rows: SqlRows

    def _load(self, row_id: int, value: object) -> bytes:
        where = f"{self.rows.db.where} id={row_id}"
        if value is None:
            raise EpisodeError(where, "image is NULL")
        if self.rows.db.source.image_kind == "bytes":
            return bytes(value)  # type: ignore[arg-type]
        text = value.decode() if isinstance(value, bytes) else str(value)
        path = Path(unquote(urlsplit(text).path)) if text.startswith("file:") else Path(text)
        root = self.rows.db.source.image_root
        path = path if path.is_absolute() or root is None else root / path
        try:
            return path.read_bytes()
        except OSError as exc:
            raise EpisodeError(path, f"image file unreadable (row id={row_id}): {exc}") from exc

    def iter_at(
        self, positions: Sequence[int], times: np.ndarray, fps: float
    ) -> Iterator[tuple[int, np.ndarray]]:
        ids = self.rows.ids()
        for p in positions:
            if not 0 <= p < len(ids):
                raise EpisodeError(self.rows.location, f"no frame {p}: holds {len(ids)} rows")
        wanted = sorted({ids[p] for p in positions})
        db = self.rows.db
        query = sa.select(db.col("id"), db.col("image")).where(db.col("id").in_(wanted))
        try:
            with db.engine.connect() as con:
                images = {r[0]: r[1] for r in con.execute(query)}
        except sa.exc.SQLAlchemyError as exc:
            raise EpisodeError(self.rows.location, f"cannot read images ({exc})") from exc
        for slot, p in enumerate(positions):
            row_id = ids[p]
            data = self._load(row_id, images.get(row_id))
            yield slot, decode_image(data, f"{db.where} id={row_id}")

    def probe(self, length: int, last_time: float, fps: float) -> FrameInfo:
        ids = self.rows.ids()
        if len(ids) < length:
            raise EpisodeError(self.rows.location, f"holds {len(ids)} rows, expected {length}")
        data = self._load(ids[0], self._raw(ids[0]))
        height, width = decode_image(data, f"{self.rows.db.where} id={ids[0]}").shape[:2]
        return FrameInfo(image_kind(data), height, width, self.rows.db.where)

    def _raw(self, row_id: int) -> object:
        db = self.rows.db
        with db.engine.connect() as con:
            return con.execute(sa.select(db.col("image")).where(db.col("id") == row_id)).scalar()


class SqlReader:
    format = "sql"

    def __init__(self, location: str, dataset_id: str) -> None:
        self.location = location
        self.dataset_id = dataset_id
        self.source = parse_sql_location(location)
        self.where = (
            sa.engine.make_url(self.source.engine_url).render_as_string(hide_password=True)
            + f" table {self.source.table}"
        )
        self.db = _Rows(self.source, self.where)
        self.db.table  # noqa: B018 - fail now, dataset-wide, when the table is unusable

    def _grouped(self) -> list[sa.Row]:
        db = self.db
        has_task = self.source.columns["task"] in db.table.c
        query = (
            sa.select(
                db.col("episode_id"),
                sa.func.count(),
                sa.func.min(db.col("id")),
                sa.func.max(db.col("id")),
                sa.func.sum(db.col("frame_index")),
                sa.func.min(db.col("task")) if has_task else sa.literal(""),
            )
            .group_by(db.col("episode_id"))
            .order_by(db.col("episode_id"))
        )
        try:
            with db.engine.connect() as con:
                return list(con.execute(query))
        except sa.exc.SQLAlchemyError as exc:
            raise DatasetError(self.where, f"cannot list episodes ({type(exc).__name__})") from exc

    @cached_property
    def fps(self) -> float:
        """The URL's fps, else frame_index / timestamp over a sample of rows."""
        if self.source.fps:
            return self.source.fps
        db = self.db
        if self.source.columns["timestamp"] in db.table.c:
            query = (
                sa.select(db.col("frame_index"), db.col("timestamp"))
                .where(db.col("timestamp") > 0)
                .order_by(db.col("id"))
                .limit(200)
            )
            with db.engine.connect() as con:
                ratios = [f / t for f, t in con.execute(query) if t]
            if ratios:
                return round(float(np.median(ratios)), 6)
        raise DatasetError(self.where, "cannot tell the fps (no timestamps): add &fps=<rate>")

    def _episodes(self) -> list[tuple[int, sa.Row]]:
        grouped = self._grouped()
        if not grouped:
            raise DatasetError(self.where, "holds no rows")
        ints = all(isinstance(r[0], int) for r in grouped)
        return [(int(r[0]) if ints else i, r) for i, r in enumerate(grouped)]

    def episodes(self) -> list[EpisodeRef]:
        refs = []
        for index, (episode_id, count, lo, hi, total, task) in self._episodes():
            rows = SqlRows(self.db, episode_id, index, self.fps)
            signature = hashlib.sha256(
                json.dumps([str(episode_id), count, lo, hi, str(total)]).encode()
            ).hexdigest()[:16]
            refs.append(
                EpisodeRef(
                    self.dataset_id,
                    index,
                    int(count),
                    self.fps,
                    task or "",
                    rows,
                    {self.source.camera: SqlFrames(rows)},
                    signature=signature,
                    every_frame_is_keyframe=True,
                )
            )
        return refs

    def episode_ids(self) -> dict[int, object]:
        """Episode index -> the episode_id value in the table (for the write-back)."""
        return {index: row[0] for index, row in self._episodes()}

    def signatures(self) -> dict[int, str]:
        return {e.episode_index: e.signature for e in self.episodes()}


def change_signature(location: str) -> str:
    """Row count and highest id: new rows change it (the sensor polls this)."""
    source = parse_sql_location(location)
    engine = source.engine()
    try:
        table = open_table(source, engine, location)
        id_col = table.c[source.columns["id"]]
        with engine.connect() as con:
            count, top = con.execute(sa.select(sa.func.count(), sa.func.max(id_col))).one()
    finally:
        engine.dispose()
    return f"{count}:{top}"
