"""HDF5 datasets: keyframe extraction per layout against reading every frame, and the
`enrichments` sidecar write-back in MB/s.

PYTHONPATH=$PWD .venv/bin/python bench/hdf5_formats.py [--episodes 6] [--frames 300] [--repeats 3]

Datasets are written to a temp dir from the real G1 fixture (frames decoded with PyAV at
640x480, repeated to `--frames` per episode) into robomimic (raw uint8), LIBERO (raw uint8)
and ALOHA (one JPEG per frame) containers. Per repeat both sides process every episode back
to back; figures are per episode, median over repeats. The baseline reads every frame of
every camera through the same FrameSource (`iter_at` over all positions), i.e. what a reader
that loads whole arrays and decodes every image would pay at least.
The write-back figure is sidecar bytes / wall time for `write_sidecar` with 10 keyframes
per episode, a 768-d embedding and a 480x640 float16 depth map each (gzip, chunked per map).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from enrich_assets.datasets.hdf5.reader import HDF5Reader
from enrich_assets.datasets.hdf5.writeback import episode_enrichments, write_sidecar
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.infra.schema import pipeline_config
from enrich_assets_tests import hdf5_fixtures as fx

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "g1_v21"


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def episodes(count: int, frames: int) -> list[fx.Ep]:
    """Real G1 frames at full size: 60 decoded frames repeated to `frames` per episode."""
    import av

    with av.open(
        str(DEFAULT_DATA / "videos/chunk-000/observation.images.cam_high/episode_000000.mp4")
    ) as c:
        real = np.stack(
            [
                f.to_ndarray(format="rgb24")
                for _, f in zip(range(60), c.decode(video=0), strict=False)
            ]
        )
    out = []
    for e in range(count):
        picks = (np.arange(frames) + 7 * e) % len(real)
        state = np.random.default_rng(e).normal(size=(frames, 14)).astype(np.float32)
        out.append(fx.Ep("bench", {"agentview": real[picks]}, state, state))
    return out


def read_every_frame(reader: HDF5Reader) -> int:
    count = 0
    for ref in reader.episodes():
        every = range(ref.length)
        times = np.arange(ref.length) / ref.fps
        for source in ref.frames.values():
            count += sum(1 for _ in source.iter_at(every, times, ref.fps))
    return count


def bench_layout(location: Path, policy: KeyframePolicy, repeats: int) -> dict[str, float]:
    reader = HDF5Reader(location, "bench")
    refs = reader.episodes()
    read_every_frame(reader)  # warm the page cache for both sides
    keyframes = sum(len(extract_keyframes(r, policy)) for r in refs)
    picks = [timed(lambda: [extract_keyframes(r, policy) for r in refs]) for _ in range(repeats)]
    every = [timed(lambda: read_every_frame(reader)) for _ in range(repeats)]
    n = len(refs)
    return {
        "episodes": n,
        "keyframes": keyframes,
        "keyframes_ms": 1000 * statistics.median(picks) / n,
        "every_ms": 1000 * statistics.median(every) / n,
    }


def bench_writeback(location: Path, repeats: int) -> tuple[float, float]:
    reader = HDF5Reader(location, "bench")
    rng = np.random.default_rng(0)
    keys = [(r.episode_index, "agentview", f) for r in reader.episodes() for f in range(0, 300, 30)]
    base = {
        "episode_index": [k[0] for k in keys],
        "camera": [k[1] for k in keys],
        "frame_index": [k[2] for k in keys],
    }
    n = len(keys)
    tables = {
        "keyframes": pl.DataFrame(base),
        "ai_caption": pl.DataFrame(
            {**base, "ai_caption": ["a robot arm picks up a yellow bottle"] * n}
        ),
        "ai_embedding": pl.DataFrame(
            {**base, "ai_embedding": rng.normal(size=(n, 768)).astype(np.float32).tolist()}
        ),
        "ai_detections": pl.DataFrame(
            {**base, "ai_detections": ['[{"label": "bottle", "bbox": [1, 2, 3, 4]}]'] * n}
        ),
        "ai_depth": pl.DataFrame({**base, "ai_depth_path": [str(i) for i in range(n)]}),
        "tech_quality": pl.DataFrame({**base, "tech_quality_score": rng.random(n).tolist()}),
    }
    yy, xx = np.mgrid[0:480, 0:640]
    maps = {str(i): (1 + np.sin(xx / 40 + i) + yy / 480).astype(np.float16) for i in range(n)}
    bundles = episode_enrichments(tables, maps.__getitem__)
    names = reader.episode_names()
    seconds = statistics.median(
        timed(lambda: write_sidecar(location, names, bundles, {})) for _ in range(repeats)
    )
    size = location.with_name(location.stem + ".enrich.h5").stat().st_size
    raw = sum(b.depth.nbytes + b.embeddings.nbytes for b in bundles.values())
    return raw / seconds / 1e6, size / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy = KeyframePolicy(**pipeline_config("keyframes"))
    eps = episodes(args.episodes, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        layouts = {
            "robomimic (raw uint8)": fx.write_robomimic(Path(tmp) / "rm.hdf5", eps),
            "LIBERO (raw uint8)": fx.write_libero(Path(tmp) / "libero.hdf5", eps, "bench"),
            "ALOHA (JPEG per frame)": fx.write_aloha(Path(tmp) / "aloha", eps),
        }
        shape = f"{args.episodes} episodes x {args.frames} frames 480x640"
        print(f"policy: {policy}; {shape}, median of {args.repeats}")
        print("| layout | keyframes | keyframes ms/ep | every frame ms/ep | ratio |")
        print("|---|---|---|---|---|")
        for name, location in layouts.items():
            r = bench_layout(location, policy, args.repeats)
            print(
                f"| {name} | {r['keyframes']} | {r['keyframes_ms']:.1f} | {r['every_ms']:.1f} "
                f"| {r['every_ms'] / r['keyframes_ms']:.1f}x |"
            )
        raw, on_disk = bench_writeback(layouts["robomimic (raw uint8)"], args.repeats)
        print(f"write-back: {raw:.1f} MB/s of arrays ({on_disk:.1f} MB/s of compressed sidecar)")


if __name__ == "__main__":
    main()
