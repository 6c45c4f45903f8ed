"""Build frame tables (the guide's `clips` table) in real SQLite, DuckDB and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from PIL import Image

Row = tuple[int, int, int, float, bytes, str]  # id, episode_id, frame_index, timestamp, png, task


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def synthetic_image(episode: int, frame: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    """Deterministic, distinct per (episode, frame): a gradient plus seeded noise."""
    rng = np.random.default_rng(episode * 1000 + frame)
    h, w = size
    base = np.linspace(0, 200, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    return np.clip(base + rng.integers(0, 55, (h, w, 3)), 0, 255).astype(np.uint8)


def synthetic_rows(episodes: int, frames: int, step: int = 6, first_id: int = 0) -> list[Row]:
    rows, row_id = [], first_id
    for e in range(episodes):
        for i in range(frames):
            fi = i * step
            rows.append((row_id, e, fi, fi / 30.0, png(synthetic_image(e, fi)), f"task {e}"))
            row_id += 1
    return rows


def clips_table() -> sa.Table:
    return sa.Table(
        "clips",
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("episode_id", sa.BigInteger),
        sa.Column("frame_index", sa.BigInteger),
        sa.Column("timestamp", sa.Float),
        sa.Column("image", sa.LargeBinary),
        sa.Column("task", sa.Text),
    )


def insert_rows(engine_url: str, rows: Iterable[Row], create: bool = False) -> None:
    engine = sa.create_engine(engine_url, poolclass=sa.pool.NullPool)
    table = clips_table()
    if create:
        table.drop(engine, checkfirst=True)
        table.create(engine)
        sa.Table("enrich_checkpoints", sa.MetaData()).drop(engine, checkfirst=True)
    names = ("id", "episode_id", "frame_index", "timestamp", "image", "task")
    with engine.begin() as con:
        con.execute(sa.insert(table), [dict(zip(names, r, strict=True)) for r in rows])
    engine.dispose()


def database_url(kind: str, tmp: Path, postgres_url: str | None) -> str:
    """An empty database of `kind` (sqlite, duckdb, postgresql) as a SQLAlchemy URL."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'clips.db'}"
    if kind == "duckdb":
        return f"duckdb:///{tmp / 'clips.duckdb'}"
    assert postgres_url is not None
    return postgres_url
