"""Keyframe embeddings as one matrix in the asked key order; their config as one hash."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from enrich_assets.enrich.derived.embeddings import embedding_config, embedding_matrix

ROWS = pl.DataFrame(
    {
        "episode_index": [0, 0, 1],
        "camera": ["top", "top", "top"],
        "frame_index": [0, 5, 0],
        "ai_embedding": [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]],
    }
)


def test_rows_come_back_in_the_keys_order() -> None:
    keys = ROWS.select("episode_index", "camera", "frame_index").reverse()
    matrix = embedding_matrix("d", keys, ROWS)
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])


def test_a_missing_or_ragged_embedding_is_refused() -> None:
    keys = pl.DataFrame({"episode_index": [2], "camera": ["top"], "frame_index": [0]})
    with pytest.raises(ValueError, match="d: ai_embedding rows are missing"):
        embedding_matrix("d", keys, ROWS)
    ragged = ROWS.with_columns(pl.Series("ai_embedding", [[1.0], [0.0, 1.0], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="different widths"):
        embedding_matrix("d", ROWS.drop("ai_embedding"), ragged)


def test_config_is_the_set_of_code_versions() -> None:
    a = pl.DataFrame({"code_version": ["v1", "v2", "v1"]})
    b = pl.DataFrame({"code_version": ["v2", "v1"]})
    assert embedding_config(a) == embedding_config(b)
    assert embedding_config(a) != embedding_config(pl.DataFrame({"code_version": ["v1"]}))
