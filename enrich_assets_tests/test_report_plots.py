"""UI plots: valid small PNGs, edge cases of the embedding map, and the markdown embedding."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from enrich_assets.enrich.curation.plots import (
    bar_png,
    cluster_sizes_png,
    duplicate_groups_png,
    embedding_map_png,
    histogram_png,
    png_markdown,
    project_2d,
    search_hits_png,
)

FIGURE_SIZE = (320, 240)  # 4 x 3 inches at 80 dpi


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image


def test_project_2d_finds_the_spread_axis() -> None:
    points = np.array([[0.0, 5, 1], [1, 5, 1], [2, 5, 1], [3, 5, 1]])
    coords = project_2d(points)
    assert coords.shape == (4, 2)
    np.testing.assert_allclose(np.abs(coords[:, 0]), [1.5, 0.5, 0.5, 1.5], atol=1e-9)
    np.testing.assert_allclose(coords[:, 1], 0, atol=1e-9)
    assert project_2d(np.array([[1.0], [2.0]])).shape == (2, 2)  # one dimension: y is zero


@pytest.mark.parametrize(
    ("n", "clusters"),
    [(1, [0]), (1, [-1]), (50, [3] * 50), (60, [-1] * 20 + [0] * 20 + [7] * 20)],
)
def test_embedding_map_edge_cases(n: int, clusters: list[int]) -> None:
    embeddings = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    assert decoded(embedding_map_png(embeddings, np.array(clusters))).size == FIGURE_SIZE


def test_embedding_map_subsamples_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(3000, 16)).astype(np.float32)
    clusters = rng.integers(-1, 30, 3000)
    png = embedding_map_png(embeddings, clusters, max_points=500)
    assert decoded(png).size == FIGURE_SIZE
    assert png == embedding_map_png(embeddings, clusters, max_points=500)
    assert png != embedding_map_png(embeddings, clusters, max_points=500, seed=1)
    with pytest.raises(ValueError, match="embedding map"):
        embedding_map_png(embeddings, clusters[:10])
    with pytest.raises(ValueError, match="embedding map"):
        embedding_map_png(np.zeros((0, 4)), np.zeros(0))


def test_charts() -> None:
    sizes = decoded(cluster_sizes_png(np.array([-1, 0, 0, 1, 1, 1])))
    assert sizes.size == FIGURE_SIZE
    scores = np.random.default_rng(0).random(200)
    assert (
        decoded(histogram_png(scores, "quality", "score", value_range=(0, 1))).size == FIGURE_SIZE
    )
    with pytest.raises(ValueError, match="no finite values"):
        histogram_png(np.array([np.nan]), "quality", "score")
    with pytest.raises(ValueError, match="cluster sizes"):
        cluster_sizes_png(np.array([], np.int64))
    bars = np.asarray(decoded(bar_png(np.array([3, 0, 9]), "sizes", "cluster")).convert("RGB"))
    assert bars.shape == (*FIGURE_SIZE[::-1], 3) and (bars != 255).any()


def colour(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (96, 96, 1))


def test_duplicate_groups_one_row_each() -> None:
    red, green, blue = colour((255, 0, 0)), colour((0, 255, 0)), colour((0, 0, 255))
    image = np.asarray(decoded(duplicate_groups_png([[red, green], [blue]], per_group=3)))
    assert image.shape == (96 + 4 + 96, 3 * 96, 3)
    np.testing.assert_array_equal(image[48, 48], [255, 0, 0])
    np.testing.assert_array_equal(image[48, 96 + 48], [0, 255, 0])
    np.testing.assert_array_equal(image[98, 10], [255, 255, 255])  # separator line
    np.testing.assert_array_equal(image[100 + 48, 48], [0, 0, 255])
    np.testing.assert_array_equal(image[100 + 48, 96 + 48], [0, 0, 0])  # padding
    with pytest.raises(ValueError, match="duplicate groups"):
        duplicate_groups_png([[red], []])


def test_search_hits_grid() -> None:
    hits = [colour((i * 40, 0, 0)) for i in range(5)]
    image = np.asarray(decoded(search_hits_png(hits, columns=4)))
    assert image.shape == (2 * 96, 4 * 96, 3)
    np.testing.assert_array_equal(image[96 + 48, 48], [160, 0, 0])  # 5th hit starts row 2


def test_png_markdown_round_trips() -> None:
    png = cluster_sizes_png(np.array([0, 1]))
    md = png_markdown(png, "cluster sizes [v1]")
    assert md.startswith("![cluster sizes (v1)](data:image/png;base64,") and md.endswith(")")
    assert base64.b64decode(md[md.index(",") + 1 : -1]) == png
