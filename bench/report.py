"""Validation report, review sample and embedding map at a million keyframes.

Run: .venv/bin/python bench/report.py [keyframes]
Baseline: the embedding map plotting every keyframe (no subsample), same run.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import polars as pl

from enrich_assets.enrich.curation.plots import embedding_map_png
from enrich_assets.enrich.curation.report import build_validation_report
from enrich_assets.enrich.curation.review_sample import review_sample

WORDS = "a robot arm picks the red cup from the table and places it in the tray".split()


def tables(n: int, rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    episode = np.arange(n) // 20
    keys = pl.DataFrame(
        {"episode_index": episode, "camera": ["cam"] * n, "frame_index": np.arange(n) % 20}
    )
    lengths = rng.integers(8, 40, n)
    captions = [" ".join(WORDS[: 1 + k % 15]) + ". " + " ".join(WORDS[: k // 3]) for k in lengths]
    labels = np.array(["cup", "tray", "robot gripper", "table"])
    detections = [
        json.dumps([{"label": str(lb), "confidence": 0.5, "bbox": [0, 0, 9, 9]} for lb in ls])
        for ls in (labels[: rng.integers(0, 5)] for _ in range(n))
    ]
    n_episodes = int(episode.max()) + 1
    return {
        "keyframes": keys.with_columns(tech_timestamp=pl.lit(0.0), tech_image_path=pl.lit("x.png")),
        "ai_caption": keys.with_columns(
            ai_caption=pl.Series(captions),
            ai_caption_reused_from=pl.lit(None, pl.Int64),
            ai_caption_error=pl.lit(None, pl.String),
        ),
        "ai_detections": keys.with_columns(
            ai_detections=pl.Series(detections),
            ai_detection_count=pl.Series([d.count("label") for d in detections]),
        ),
        "tech_quality": keys.with_columns(
            tech_quality_score=rng.random(n),
            tech_blur_laplacian_var=rng.random(n) * 300,
            tech_brightness=rng.random(n) * 255,
            tech_completeness=rng.random(n),
            tech_is_blurry=rng.random(n) < 0.1,
            tech_is_dark=rng.random(n) < 0.1,
            tech_is_overexposed=rng.random(n) < 0.1,
        ),
        "ai_semantic_cluster": keys.with_columns(
            ai_cluster_id=rng.integers(-1, 50, n), ai_cluster_version=pl.lit("v")
        ),
        "validation": pl.DataFrame(
            {
                "episode_index": np.repeat(np.arange(n_episodes), 10),
                "asset": "keyframes",
                "rule": np.tile([f"rule_{i}" for i in range(10)], n_episodes),
                "severity": "ERROR",
                "passed": rng.random(n_episodes * 10) < 0.99,
                "message": "",
            }
        ),
    }


def timed(label: str, fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {seconds:8.2f} s")
    return out, seconds


def main(n: int) -> None:
    rng = np.random.default_rng(0)
    frames, _ = timed(f"setup: synthesize {n:,} keyframes", lambda: tables(n, rng))
    timed("build_validation_report", lambda: build_validation_report("bench", "v1", frames))
    timed(
        "review_sample (200 of all)",
        lambda: review_sample(frames["keyframes"], frames["ai_semantic_cluster"]),
    )
    embeddings = rng.normal(size=(n, 128)).astype(np.float32)
    clusters = frames["ai_semantic_cluster"]["ai_cluster_id"].to_numpy()
    _, fast = timed(
        "embedding_map_png (10k subsample)", lambda: embedding_map_png(embeddings, clusters)
    )
    _, full = timed(
        "baseline: embedding_map_png (every point)",
        lambda: embedding_map_png(embeddings, clusters, max_points=n),
    )
    print(f"embedding map speed-up over plotting every point: {full / fast:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
