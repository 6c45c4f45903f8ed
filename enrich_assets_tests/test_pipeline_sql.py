"""A SQL clips table through the whole graph: real G1 frames in SQLite rows, results written
back as columns; PostgreSQL through the enrichments that feed the write-back."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import sqlalchemy as sa

from enrich_assets.app.run_driver import materialize_dataset
from enrich_assets.datasets.sql.source import with_options
from enrich_assets_tests.conftest import real_fixture
from enrich_assets_tests.sql_tables import insert_rows, png

CAMERA = "observation.images.cam_high"


def _g1_rows(frames: int = 24, step: int = 6) -> list:
    """Rows of a clips table from the real G1 fixture: every `step`-th frame, downscaled."""
    root = real_fixture("g1_v21")
    task = json.loads((root / "meta/tasks.jsonl").read_text().splitlines()[0])["task"]
    rows, row_id = [], 0
    for episode in (0, 1):
        path = root / f"videos/chunk-000/{CAMERA}/episode_{episode:06d}.mp4"
        with av.open(str(path)) as container:
            for i, frame in zip(range(frames), container.decode(video=0), strict=False):
                if i % step == 0:
                    image = np.ascontiguousarray(frame.to_ndarray(format="rgb24")[::4, ::4])
                    rows.append((row_id, episode, i, i / 30.0, png(image), task))
                    row_id += 1
    return rows


def _defs():  # noqa: ANN202 - built after the test's settings are in the environment
    from enrich_assets.definitions import build_definitions

    return build_definitions()


def _table(url: str) -> list[dict]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as con:
        rows = [dict(r._mapping) for r in con.execute(sa.text("select * from clips order by id"))]
    engine.dispose()
    return rows


def test_sqlite_clips_through_the_whole_graph(settings, tmp_path: Path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'clips.db'}"
    insert_rows(url, _g1_rows(), create=True)
    location = with_options(url, table="clips")
    report = materialize_dataset(_defs(), settings, location, select="not group:curation")
    assert report.ok, report.failures
    assert report.summary["ai_caption"]["ok"] == 2
    rows = _table(url)
    assert len(rows) == 8
    for row in rows:
        assert row["ai_caption"] and 0 <= row["tech_quality_score"] <= 1
        assert len(json.loads(row["ai_embedding"])) > 0
        assert isinstance(json.loads(row["ai_detections"]), list)
    # nothing new: the write-back updates no row
    again = materialize_dataset(_defs(), settings, location, select="sql_writeback")
    assert again.ok
    assert _table(url) == rows


def test_postgres_clips_write_back(settings, postgres_url: str) -> None:  # noqa: ANN001
    insert_rows(postgres_url, _g1_rows(frames=12), create=True)
    location = with_options(postgres_url, table="clips")
    select = "episode_manifest,keyframes,tech_quality,ai_embedding,sql_writeback"
    report = materialize_dataset(_defs(), settings, location, select=select)
    assert report.ok, report.failures
    rows = _table(postgres_url)
    assert len(rows) == 4
    assert all(0 <= r["tech_quality_score"] <= 1 for r in rows)
    assert all(isinstance(r["ai_embedding"], list) and r["ai_embedding"] for r in rows)
    assert all(r["ai_caption"] is None for r in rows)  # not selected: waits, no error
    with pytest.raises(KeyError):
        rows[0]["ai_missing"]
