"""The SQL table source on real SQLite, DuckDB and PostgreSQL: reading frames, the
write-back's checkpoints and 1,000-row transactions, migrations, and URL errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from enrich_assets.datasets.episode import read_frames
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.frames import frames_at
from enrich_assets.datasets.open import change_signature, dataset_format, open_dataset
from enrich_assets.datasets.sql.source import parse_sql_location, with_options
from enrich_assets.datasets.sql.writeback import WritebackColumn, write_back
from enrich_assets_tests.sql_tables import (
    database_url,
    insert_rows,
    synthetic_image,
    synthetic_rows,
)

KINDS = ["sqlite", "duckdb", "postgresql"]


@pytest.fixture(params=KINDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind; PostgreSQL is the session's real server."""
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return database_url(request.param, tmp_path, pg)


def test_reads_episodes_and_only_the_asked_frames(db: str) -> None:
    insert_rows(db, synthetic_rows(episodes=3, frames=5), create=True)
    location = with_options(db, table="clips")
    assert dataset_format(location).name == "sql"
    reader = open_dataset(location, "clips")
    refs = reader.episodes()
    assert [r.episode_index for r in refs] == [0, 1, 2]
    ref = refs[1]
    assert (ref.length, ref.fps, ref.task, ref.cameras) == (5, 30.0, "task 1", ["image"])
    assert ref.every_frame_is_keyframe
    table = read_frames(ref, ("timestamp", "frame_index", "episode_index"))
    assert table.column("frame_index").to_pylist() == [0, 6, 12, 18, 24]
    assert table.column("timestamp").to_pylist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    images = frames_at(ref.frames["image"], [3, 0], np.array([0.6, 0.0]), ref.fps)
    assert np.array_equal(images[0], synthetic_image(1, 18))
    assert np.array_equal(images[1], synthetic_image(1, 0))
    info = ref.frames["image"].probe(ref.length, 0.8, ref.fps)
    assert (info.codec, info.height, info.width) == ("png", 24, 32)


def test_new_rows_change_the_signature_and_add_episodes(db: str) -> None:
    insert_rows(db, synthetic_rows(episodes=2, frames=3), create=True)
    location = with_options(db, table="clips")
    before = change_signature(location)
    insert_rows(db, [(100, 7, 0, 0.0, b"", "t"), (101, 7, 6, 0.2, b"", "t")])
    assert change_signature(location) != before
    refs = open_dataset(location, "clips").episodes()
    assert [r.episode_index for r in refs] == [0, 1, 7]


def test_a_corrupt_image_fails_its_episode_only(db: str) -> None:
    rows = synthetic_rows(episodes=2, frames=3)
    rows[4] = (*rows[4][:4], b"not an image", rows[4][5])  # episode 1, second row
    insert_rows(db, rows, create=True)
    refs = open_dataset(with_options(db, table="clips"), "clips").episodes()
    assert len(frames_at(refs[0].frames["image"], [0, 1, 2], np.zeros(3), 30.0)) == 3
    with pytest.raises(EpisodeError, match=r"id=4: corrupt image"):
        frames_at(refs[1].frames["image"], [1], np.zeros(1), 30.0)


def test_column_names_and_image_paths_from_the_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'frames.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(sa.text("create table frames (fid int, ep int, n int, path text)"))
        for n in range(3):
            (tmp_path / f"f{n}.png").write_bytes(
                __import__("enrich_assets_tests.sql_tables", fromlist=["png"]).png(
                    synthetic_image(0, n)
                )
            )
            con.execute(sa.text(f"insert into frames values ({n}, 0, {n}, 'f{n}.png')"))
    location = with_options(
        url,
        table="frames",
        id="fid",
        episode_id="ep",
        frame_index="n",
        image="path",
        image_kind="path",
        image_root=str(tmp_path),
        fps="10",
    )
    (ref,) = open_dataset(location, "frames").episodes()
    assert (ref.fps, ref.task, ref.cameras) == (10.0, "", ["path"])
    assert read_frames(ref, ("timestamp",)).column("timestamp").to_pylist() == pytest.approx(
        [0, 0.1, 0.2]
    )
    (image,) = frames_at(ref.frames["path"], [2], np.zeros(1), 10.0)
    assert np.array_equal(image, synthetic_image(0, 2))


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("", "names no table"),
        ("?table=clips&imgae=x", "unknown URL option(s) ['imgae']"),
        ("?table=clips&image_kind=url", "image_kind must be one of"),
        ("?table=nope", "has no table 'nope'"),
        ("?table=clips&image=frame_data", "lacks column(s) ['frame_data']"),
    ],
)
def test_bad_locations_are_one_line_errors(tmp_path: Path, query: str, problem: str) -> None:
    url = f"sqlite:///{tmp_path / 'clips.db'}"
    insert_rows(url, synthetic_rows(1, 1), create=True)
    with pytest.raises(DatasetError) as err:
        open_dataset(url + query, "x")
    assert problem in str(err.value) and "\n" not in str(err.value)


def test_a_password_in_the_url_is_refused_and_never_echoed() -> None:
    with pytest.raises(DatasetError) as err:
        parse_sql_location("postgresql://robot:s3cret@127.0.0.1:5432/robot?table=clips")
    assert "s3cret" not in str(err.value) and "PGPASSWORD" in str(err.value)


QUALITY = WritebackColumn("tech_quality_score", "float64")
CAPTION = WritebackColumn("ai_caption", "string")
EMBEDDING = WritebackColumn("ai_embedding", "list<float32>")
DETECTIONS = WritebackColumn("ai_detections", "json")


def _lookups(missing_episode: int | None = None, fail_after: int | None = None):  # noqa: ANN202
    calls = {"n": 0}

    def values(name: str):  # noqa: ANN202
        def lookup(keys):  # noqa: ANN001, ANN202
            calls["n"] += 1
            if fail_after is not None and calls["n"] > fail_after:
                raise RuntimeError("crash in the middle of the pass")
            out = {}
            for ep, fi in keys:
                if ep == missing_episode:
                    continue
                out[(ep, fi)] = {
                    "tech_quality_score": ep + fi / 1000,
                    "ai_caption": f"caption {ep}/{fi}",
                    "ai_embedding": np.array([ep, fi, 1.0], np.float32),
                    "ai_detections": '[{"label": "cup", "confidence": 0.5}]',
                }[name]
            return out

        return lookup

    return {c.name: values(c.name) for c in (QUALITY, CAPTION, EMBEDDING, DETECTIONS)}


def _count(db: str, where: str) -> int:
    engine = sa.create_engine(db, poolclass=sa.pool.NullPool)
    with engine.connect() as con:
        n = con.execute(sa.text(f"select count(*) from clips where {where}")).scalar_one()
    engine.dispose()
    return n


def _rows_without_images(episodes: int, frames: int, first_id: int = 0) -> list:
    return [(*r[:4], b"", r[5]) for r in synthetic_rows(episodes, frames, first_id=first_id)]


def test_write_back_in_1000_row_transactions_with_checkpoints(db: str) -> None:
    insert_rows(db, _rows_without_images(episodes=5, frames=500), create=True)  # 2,500 rows
    source = parse_sql_location(with_options(db, table="clips"))
    index = {e: e for e in range(5)}
    columns = [QUALITY, CAPTION, EMBEDDING, DETECTIONS]
    report = write_back(source, columns, index, _lookups(missing_episode=4))
    assert report.added_columns == [c.name for c in columns]
    for column in columns:
        assert report.columns[column.name].written == 2000
        # ids 0-999 and 1000-1999 in one transaction each; episode 4 (2000-2499) has no results
        assert report.columns[column.name].batches == 2
        assert report.columns[column.name].waiting == 500
    assert _count(db, "ai_caption is not null") == 2000
    assert _count(db, "ai_caption = 'caption 3/12'") == 1
    # nothing new: no row is updated, no transaction written
    again = write_back(source, columns, index, _lookups(missing_episode=4))
    assert again.written == 0 and again.added_columns == []
    # the waiting episode's results arrive: only its rows are written
    late = write_back(source, columns, index, _lookups())
    assert late.columns["ai_caption"].written == 500
    assert _count(db, "ai_caption is null") == 0


def test_a_crash_resumes_from_the_checkpoint(db: str) -> None:
    insert_rows(db, _rows_without_images(episodes=3, frames=1000), create=True)  # 3,000 rows
    source = parse_sql_location(with_options(db, table="clips"))
    index = {e: e for e in range(3)}
    with pytest.raises(RuntimeError, match="crash"):
        write_back(source, [CAPTION], index, {"ai_caption": _lookups(fail_after=2)["ai_caption"]})
    assert _count(db, "ai_caption is not null") == 2000  # two whole transactions, no partial one
    resumed = write_back(source, [CAPTION], index, _lookups())
    assert resumed.columns["ai_caption"].resumed_from == 1999
    assert resumed.columns["ai_caption"].written == 1000
    assert _count(db, "ai_caption is null") == 0


def test_a_new_column_is_migrated_and_backfilled_while_rows_arrive(db: str) -> None:
    insert_rows(db, _rows_without_images(episodes=2, frames=10), create=True)
    source = parse_sql_location(with_options(db, table="clips"))
    index = {e: e for e in range(3)}
    write_back(source, [CAPTION], index, _lookups())
    insert_rows(db, _rows_without_images(episodes=3, frames=10, first_id=1000)[20:])
    report = write_back(source, [CAPTION, QUALITY], index, _lookups())
    assert report.added_columns == ["tech_quality_score"]
    assert report.columns["tech_quality_score"].written == 30  # old rows backfilled, new filled
    assert report.columns["ai_caption"].written == 10  # only the new rows
    assert _count(db, "tech_quality_score is null or ai_caption is null") == 0
