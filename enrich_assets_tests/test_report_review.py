"""The review sample (stratified by cluster, seeded) and its HTML contact sheet."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import polars as pl
import pytest
from PIL import Image

from enrich_assets.enrich.curation.review_sample import allocate, review_sample, stratified_sample
from enrich_assets.enrich.curation.review_sheet import review_rows, review_sheet_html


def keyframes(clusters: list[int]) -> pl.DataFrame:
    n = len(clusters)
    return pl.DataFrame(
        {
            "episode_index": [i // 10 for i in range(n)],
            "camera": ["cam"] * n,
            "frame_index": [i % 10 for i in range(n)],
            "tech_timestamp": [0.1 * (i % 10) for i in range(n)],
            "tech_image_path": [f"keyframes/{i}.png" for i in range(n)],
            "ai_cluster_id": clusters,
        }
    )


# 300 keyframes: noise 5, cluster 0 195, cluster 1 99, cluster 2 a single keyframe
CLUSTERS = [-1] * 5 + [0] * 195 + [1] * 99 + [2]


def test_allocate_proportional_with_one_each() -> None:
    assert allocate(np.array([100, 50, 50]), 20).tolist() == [10, 5, 5]
    assert allocate(np.array([1000, 1, 1]), 10).tolist() == [8, 1, 1]
    assert allocate(np.array([3, 97]), 10).tolist() == [1, 9]
    assert allocate(np.array([2, 3]), 10).tolist() == [2, 3]  # fewer than asked: all
    assert allocate(np.array([5, 9, 5]), 2).tolist() == [1, 1, 0]  # more strata than draws
    rng = np.random.default_rng(1)
    for _ in range(50):
        sizes = rng.integers(1, 500, rng.integers(1, 40))
        n = int(rng.integers(1, 400))
        quota = allocate(sizes, n)
        assert quota.sum() == min(n, sizes.sum()) and np.all(quota <= sizes)
        if len(sizes) <= n < sizes.sum():
            assert np.all(quota >= 1)


def test_sample_covers_every_cluster_deterministically() -> None:
    frame = keyframes(CLUSTERS)
    sample = stratified_sample(frame, n=40, seed=3)
    assert sample.height == 40
    counts = dict(sample.group_by("ai_cluster_id").len().iter_rows())
    # shares 40 * (5, 195, 99, 1) / 300 = (0.67, 26, 13.2, 0.13); the two small clusters get
    # one each, paid for by the stratum then least short of its share (cluster 0)
    assert counts == {-1: 1, 0: 25, 1: 13, 2: 1}
    assert sample.select("episode_index", "camera", "frame_index").is_unique().all()
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=9)
    assert stratified_sample(shuffled, n=40, seed=3).equals(sample)  # row order does not matter
    assert not stratified_sample(frame, n=40, seed=4).equals(sample)
    assert stratified_sample(frame, n=1000).height == 300  # fewer than asked: all of them


def test_review_sample_without_clusters() -> None:
    frame = keyframes(CLUSTERS).drop("ai_cluster_id")
    sample = review_sample(frame, pl.DataFrame(), n=7)
    assert sample.height == 7 and sample["ai_cluster_id"].null_count() == 7
    assert review_sample(pl.DataFrame(), pl.DataFrame()).height == 0


def test_review_sample_joins_clusters() -> None:
    frame = keyframes(CLUSTERS)
    clusters = frame.select("episode_index", "camera", "frame_index", "ai_cluster_id")
    sample = review_sample(frame.drop("ai_cluster_id"), clusters, n=40, seed=3)
    assert sample.equals(stratified_sample(frame, n=40, seed=3))


def solid(value: int) -> np.ndarray:
    return np.full((64, 96, 3), value, np.uint8)


def test_sheet_lists_every_item_escaped() -> None:
    sample = keyframes([0, 0, 1, -1])
    keys = sample.select("episode_index", "camera", "frame_index")
    tables = {
        "ai_caption": keys.with_columns(
            ai_caption=pl.Series(["<script>alert(1)</script> A cup.", "ok", None, "fine"]),
            ai_caption_reused_from=pl.Series([None, 0, None, None], dtype=pl.Int64),
            ai_caption_error=pl.Series([None, None, "empty reply", None]),
        ),
        "ai_detections": keys.with_columns(
            ai_detections=pl.Series(
                [json.dumps([{"label": "cup & saucer", "confidence": 0.91}]), "[]", None, "[]"]
            )
        ),
    }
    rows = review_rows(sample, tables)
    assert rows["tech_quality_score"].null_count() == 4  # table absent: column null
    loaded = []

    def load(path: str) -> np.ndarray:
        loaded.append(path)
        return solid(40 * len(loaded))

    html = review_sheet_html(rows, load, "ds", 'v"1')
    assert loaded == sample["tech_image_path"].to_list()
    items = re.findall(r'<figure class="item" data-episode="(\d+)" data-frame="(\d+)"', html)
    assert items == [
        (str(e), str(f))
        for e, f in zip(sample["episode_index"], sample["frame_index"], strict=True)
    ]
    assert html.count("<script>") == 1  # only the sheet's own
    assert "&lt;script&gt;alert(1)&lt;/script&gt; A cup." in html
    assert "cup &amp; saucer 0.91" in html
    assert "(none: empty reply)" in html and "ok (reused from frame 0)" in html
    assert 'data-version="v&quot;1"' in html
    assert html.count('<select class="score">') == 4 and 'id="download"' in html
    uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', html).group(1)
    with Image.open(io.BytesIO(base64.b64decode(uri))) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= 192


def test_sheet_rejects_bad_detections() -> None:
    sample = keyframes([0])
    keys = sample.select("episode_index", "camera", "frame_index")
    rows = review_rows(sample, {"ai_detections": keys.with_columns(ai_detections=pl.lit("[1]"))})
    with pytest.raises(ValueError, match="episode 0 frame 0 cam: ai_detections"):
        review_sheet_html(rows, lambda _: solid(0), "ds", "v1")
