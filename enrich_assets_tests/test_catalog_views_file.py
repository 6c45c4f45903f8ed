"""The DuckDB file holds only views over the parquet catalog: one written by a newer DuckDB
(here 2.0.1, whose storage 1.5 cannot read) is set aside and rebuilt, never an error."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa

from enrich_assets.store.catalog import Catalog

NEWER = Path(__file__).parent / "fixtures" / "duckdb-2.0.1-views.duckdb.gz"


def test_a_views_file_from_a_newer_duckdb_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog", tmp_path / "enrich.duckdb")
    with gzip.open(NEWER) as src, (tmp_path / "enrich.duckdb").open("wb") as dst:
        shutil.copyfileobj(src, dst)
    newer = (tmp_path / "enrich.duckdb").read_bytes()
    try:
        duckdb.connect(str(tmp_path / "enrich.duckdb")).close()
        readable = True
    except duckdb.IOException:
        readable = False
    catalog.write("keyframes", "ds", "000000", pa.table({"x": [1, 2]}))
    assert catalog.refresh_views() == ["keyframes"]
    with duckdb.connect(str(tmp_path / "enrich.duckdb"), read_only=True) as con:
        assert con.sql("select sum(x) from keyframes").fetchone() == (3,)
    aside = list(tmp_path.glob("enrich.duckdb.newer-duckdb-*"))
    if readable:  # this DuckDB reads 2.0.1's files: nothing to set aside
        assert aside == []
    else:
        assert len(aside) == 1 and aside[0].read_bytes() == newer


def test_views_are_created_once_and_see_files_written_after(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog", tmp_path / "enrich.duckdb")
    catalog.write("keyframes", "ds", "000000", pa.table({"x": [1]}))
    assert catalog.refresh_views(missing_only=True) == ["keyframes"]
    catalog.write("keyframes", "ds", "000001", pa.table({"x": [2]}))
    catalog.write("tech_quality", "ds", "000000", pa.table({"y": [5]}))
    assert catalog.refresh_views(missing_only=True) == ["tech_quality"]  # keyframes kept
    assert catalog.refresh_views(missing_only=True) == []
    with duckdb.connect(str(tmp_path / "enrich.duckdb"), read_only=True) as con:
        assert con.sql("select sum(x) from keyframes").fetchone() == (3,)  # the later file too
        assert con.sql("select y from tech_quality").fetchone() == (5,)
