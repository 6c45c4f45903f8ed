"""The parquet catalog, the dataset registry and partition keys."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from enrich_assets.infra.partition_keys import parse_partition_key, partition_key
from enrich_assets.store.catalog import Catalog
from enrich_assets.store.registry import DatasetRegistry


def test_partition_keys_round_trip() -> None:
    key = partition_key("g1_v30", 7)
    assert key == "g1_v30:ep000007" and parse_partition_key(key) == ("g1_v30", 7)
    with pytest.raises(ValueError, match="not an episode partition key"):
        parse_partition_key("g1_v30")


def test_catalog_replaces_parts_and_exposes_views(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "catalog", tmp_path / "enrich.duckdb")
    assert cat.read("t").height == 0
    cat.write("t", "ds", "000001", pa.table({"episode_index": [1, 1], "v": [1.0, 2.0]}))
    cat.write("t", "ds", "000001", pa.table({"episode_index": [1], "v": [3.0]}))  # re-run
    cat.write("t", "ds", "000002", pa.table({"episode_index": [2], "v": [4.0]}))
    assert sorted(cat.read("t")["v"].to_list()) == [3.0, 4.0]
    assert not list((tmp_path / "catalog").rglob(".tmp-*"))
    cat.refresh_views()
    with duckdb.connect(str(tmp_path / "enrich.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(2,)]


def test_crash_mid_write_keeps_previous_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = Catalog(tmp_path / "catalog", tmp_path / "enrich.duckdb")
    cat.write("t", "ds", "000001", pa.table({"v": [1.0]}))

    def crash(table: pa.Table, where: str) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr("enrich_assets.store.catalog.pq.write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        cat.write("t", "ds", "000001", pa.table({"v": [2.0]}))
    monkeypatch.undo()
    assert cat.read("t")["v"].to_list() == [1.0]
    assert not list((tmp_path / "catalog").rglob(".tmp-*"))


def test_registry_ids_are_unique_and_stable(tmp_path: Path) -> None:
    reg = DatasetRegistry(tmp_path / "datasets.json")
    (tmp_path / "a" / "g1").mkdir(parents=True)
    (tmp_path / "b" / "g1").mkdir(parents=True)
    first = reg.register(tmp_path / "a" / "g1")
    second = reg.register(tmp_path / "b" / "g1")
    assert first == "g1" and second.startswith("g1_") and second != first
    assert reg.register(tmp_path / "a" / "g1") == first
    assert reg.location_of(second) == str((tmp_path / "b" / "g1").resolve())
