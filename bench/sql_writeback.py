"""SQL write-back on PostgreSQL: the checkpointed `WHERE <col> IS NULL ... LIMIT 1000` query
with 1,000-row transactions, against one `UPDATE` (and commit) per row.

PYTHONPATH=$PWD .venv/bin/python bench/sql_writeback.py [--rows 100000] [--baseline-rows 5000]

Starts a throwaway PostgreSQL (initdb + pg_ctl on 127.0.0.1, as the tests do), creates a
`clips` table of `--rows` rows (no images: the write-back never reads them) and fills one
float column (`tech_quality_score`) through `datasets/sql/writeback.fill_column` — the code
the `sql_writeback` asset runs. The baseline updates a fresh column one row per transaction
over the first `--baseline-rows` rows (a full 100k-row baseline takes minutes); both report
rows/s, measured in the same run against the same server.
"""

from __future__ import annotations

import argparse
import time

import sqlalchemy as sa

from enrich_assets.datasets.sql.source import parse_sql_location, with_options
from enrich_assets.datasets.sql.writeback import WritebackColumn, fill_column, migrate
from enrich_assets_tests.postgres_server import postgres_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=5_000)
    args = parser.parse_args()
    with postgres_server() as url:
        engine = sa.create_engine(url)
        with engine.begin() as con:
            con.execute(
                sa.text(
                    "create table clips (id bigint primary key, episode_id bigint, "
                    "frame_index bigint, timestamp double precision, image bytea, task text)"
                )
            )
            con.execute(
                sa.text(
                    "insert into clips select g, g / 100, g % 100, (g % 100) / 30.0, null, 't' "
                    "from generate_series(0, :n - 1) g"
                ),
                {"n": args.rows},
            )
        source = parse_sql_location(with_options(url, table="clips"))
        column = WritebackColumn("tech_quality_score", "float64")
        migrate(engine, source, [column])
        index = {e: e for e in range(args.rows // 100 + 1)}

        def lookup(keys):  # noqa: ANN001, ANN202 - every keyframe has a score
            return {k: (k[0] % 7) / 7 for k in keys}

        start = time.perf_counter()
        report = fill_column(engine, source, column, index, lookup)
        batched = time.perf_counter() - start
        assert report.written == args.rows

        with engine.begin() as con:
            con.execute(sa.text("alter table clips add column baseline double precision"))
        start = time.perf_counter()
        for row_id in range(args.baseline_rows):
            with engine.begin() as con:
                con.execute(
                    sa.text("update clips set baseline = :v where id = :id"),
                    {"v": (row_id % 7) / 7, "id": row_id},
                )
        single = time.perf_counter() - start
        engine.dispose()
    fast, slow = args.rows / batched, args.baseline_rows / single
    print(
        f"checkpointed batches: {args.rows} rows in {batched:.1f} s = {fast:,.0f} rows/s "
        f"({report.batches} transactions)"
    )
    print(f"one UPDATE per row:   {args.baseline_rows} rows in {single:.1f} s = {slow:,.0f} rows/s")
    print(f"ratio: {fast / slow:.1f}x")


if __name__ == "__main__":
    main()
