"""The validation report's UI plots from one dataset's tables: which are drawn, from what."""

from __future__ import annotations

import numpy as np
import polars as pl

from enrich_assets.enrich.curation.report_plots import duplicate_group_paths, report_plots

KEYS = ["episode_index", "camera", "frame_index"]


def _keys(n: int) -> dict[str, list]:
    return {
        "episode_index": [i // 5 for i in range(n)],
        "camera": ["top"] * n,
        "frame_index": list(range(n)),
    }


def tables(n: int = 10, groups: list[int] | None = None) -> dict[str, pl.DataFrame]:
    groups = groups if groups is not None else [-1] * n
    return {
        "tech_quality": pl.DataFrame({**_keys(n), "tech_quality_score": np.linspace(0, 1, n)}),
        "ai_semantic_cluster": pl.DataFrame(
            {**_keys(n), "ai_cluster_id": [i % 2 for i in range(n)]}
        ),
        "ai_near_duplicates": pl.DataFrame({**_keys(n), "ai_dup_group": groups}),
        "keyframes": pl.DataFrame(
            {**_keys(n), "tech_image_path": [f"img/{i}.png" for i in range(n)]}
        ),
    }


def embedding(n: int = 10) -> pl.DataFrame:
    vectors = np.random.default_rng(0).standard_normal((n, 4)).tolist()
    return pl.DataFrame({**_keys(n), "ai_embedding": vectors})


def test_largest_groups_first_a_few_images_each() -> None:
    t = tables(10, [0, 0, 0, 0, 0, 0, 6, 6, 8, -1])
    paths = duplicate_group_paths(t["ai_near_duplicates"], t["keyframes"], groups=2, per_group=4)
    assert paths == [[f"img/{i}.png" for i in range(4)], ["img/6.png", "img/7.png"]]


def test_every_plot_when_every_table_has_rows() -> None:
    loaded: list[str] = []

    def image(path: str) -> np.ndarray:
        loaded.append(path)
        return np.zeros((8, 8, 3), np.uint8)

    plots = report_plots(tables(10, [0, 0, -1, 3, 3, 3, -1, -1, -1, -1]), embedding(), image)
    assert list(plots) == [
        "quality_histogram",
        "embedding_map",
        "cluster_sizes",
        "duplicate_groups",
    ]
    assert all(png.startswith(b"\x89PNG") for png in plots.values())
    assert loaded == ["img/3.png", "img/4.png", "img/5.png", "img/0.png", "img/1.png"]


def test_plots_without_data_are_left_out() -> None:
    def image(path: str) -> np.ndarray:
        raise AssertionError(f"no duplicates, yet {path} was loaded")

    plots = report_plots(tables(), pl.DataFrame(), image)
    assert list(plots) == ["quality_histogram"]
    empty = {name: frame.clear() for name, frame in tables().items()}
    assert report_plots(empty, embedding(), image) == {}
