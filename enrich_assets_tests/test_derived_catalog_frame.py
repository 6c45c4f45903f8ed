"""A derived frame cast to its declared catalog table, columnar."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pytest

from enrich_assets.enrich.derived.catalog_frame import frame_table
from enrich_assets.infra.schema import table_schema

PROVENANCE = {
    "dataset_id": "d",
    "code_version": "c",
    "run_id": "r",
    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
}


def test_episode_table_gets_declared_types_and_null_keyframe_keys() -> None:
    frame = pl.DataFrame(
        {
            "episode_index": [1, 0],
            "ai_diversity": [0.5, float("nan")],
            "ai_diversity_percentile": [100.0, None],
            "ai_repeat_of_episode": [None, None],
            "ai_repeat_similarity": [None, None],
            "extra": ["dropped", "dropped"],
        }
    ).with_columns(**{k: pl.lit(v) for k, v in PROVENANCE.items()})
    table = frame_table("ai_episode_diversity", frame)
    assert table.schema == table_schema("ai_episode_diversity")
    assert table["camera"].null_count == 2 and table["frame_index"].null_count == 2
    assert table["episode_index"].to_pylist() == [1, 0]
    assert table["ai_repeat_of_episode"].type == pa.int64()
    assert "extra" not in table.column_names


def test_a_missing_declared_column_is_named() -> None:
    frame = pl.DataFrame({"episode_index": [0], "ai_diversity": [0.1]})
    with pytest.raises(RuntimeError, match="lack declared columns .*ai_diversity_percentile"):
        frame_table("ai_episode_diversity", frame)
