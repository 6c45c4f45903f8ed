"""Keyframe cache formats: PNG (today's `store/images.py`) against raw arrays and JPEG.

PYTHONPATH=$PWD .venv/bin/python bench/keyframe_cache.py [--per-episode 25] [--repeats 3]

Keyframes of the real G1 episodes (640x480) are decoded once with `extract_keyframes`
(25 per episode, 200 in all). Each candidate representation is then written and read back
through the same path the pipeline uses (`write_artifact`: sha256 name, atomic rename), in a
fresh temp root per repeat; median of repeats, images/s. Files are read back while still in
the page cache (as a later stage of the same run would): the figures are CPU cost of decode
and copy, not disk bandwidth.

- png: `Image.save(compress_level=1)` / `load_image`, exactly what the pipeline does now
- npy: one raw uint8 `.npy` per frame / `np.load`
- memmap: one `(n, 480, 640, 3)` uint8 `.npy` per episode and camera / `np.load(mmap_mode="r")`
  once per file, then each frame copied out (`np.array(mm[i])`, so every byte is touched)
- jpeg95 / jpeg90: Pillow (libjpeg-turbo) at that quality / `load_image`
- simplejpeg / turbojpeg variants only if those packages are installed (nothing is installed)

Fidelity against the freshly decoded frames: max abs pixel difference, and the change in the
project's quality score (`score_image`, config from schemas/pipeline.yaml): max |delta| of
`tech_quality_score`, median relative change of the Laplacian variance, and how many
blur/dark/bright flags flip.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.enrich.episode.quality import QualityConfig, score_image
from enrich_assets.infra.schema import pipeline_config
from enrich_assets.store.artifacts import write_artifact
from enrich_assets.store.images import load_image


def default_data() -> Path:
    """../shared/data/real/g1_v30 from the checkout (a worktree sits one level deeper)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "real" / "g1_v30"
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "g1_v30"


def quality_config() -> QualityConfig:
    cfg = dict(pipeline_config("quality"))
    w = cfg.pop("weights")
    return QualityConfig(**cfg, weights=(w["sharpness"], w["exposure"], w["completeness"]))


Groups = list[list[np.ndarray]]  # keyframes per (episode, camera)
Handles = list[list[Path]] | list[Path]
Format = tuple[Callable[[Path, Groups], Handles], Callable[[Path, Handles], list[np.ndarray]]]


def decode_keyframes(root: Path, per_episode: int) -> Groups:
    policy = KeyframePolicy(mode="count", count=per_episode)
    groups: dict[tuple[int, str], list[np.ndarray]] = {}
    for ref in open_lerobot(root, root.name).episodes():
        for kf in extract_keyframes(ref, policy):
            groups.setdefault((ref.episode_index, kf.camera), []).append(kf.image)
    return list(groups.values())


def pil_bytes(image: np.ndarray, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, **save)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def per_frame(encode: Callable[[np.ndarray], bytes], suffix: str, decode: Callable) -> Format:
    def write(root: Path, groups: Groups) -> Handles:
        return [[write_artifact(root, "keyframes", encode(im), suffix) for im in g] for g in groups]

    def read(root: Path, handles: Handles) -> list[np.ndarray]:
        return [decode(root, rel) for group in handles for rel in group]

    return write, read


def memmap_format() -> Format:
    def write(root: Path, groups: Groups) -> Handles:
        return [write_artifact(root, "keyframes", npy_bytes(np.stack(g)), ".npy") for g in groups]

    def read(root: Path, handles: Handles) -> list[np.ndarray]:
        out = []
        for rel in handles:
            mm = np.load(root / rel, mmap_mode="r")
            out.extend(np.array(mm[i]) for i in range(len(mm)))
        return out

    return write, read


def formats() -> dict[str, Format]:
    found: dict[str, Format] = {
        "png (today)": per_frame(
            lambda im: pil_bytes(im, format="PNG", compress_level=1), ".png", load_image
        ),
        "npy per frame": per_frame(npy_bytes, ".npy", lambda root, rel: np.load(root / rel)),
        "memmap per episode": memmap_format(),
        "jpeg q95 (Pillow)": per_frame(
            lambda im: pil_bytes(im, format="JPEG", quality=95), ".jpg", load_image
        ),
        "jpeg q90 (Pillow)": per_frame(
            lambda im: pil_bytes(im, format="JPEG", quality=90), ".jpg", load_image
        ),
    }
    try:
        import simplejpeg
    except ImportError:
        pass
    else:
        for q in (95, 90):
            found[f"jpeg q{q} (simplejpeg)"] = per_frame(
                lambda im, q=q: simplejpeg.encode_jpeg(np.ascontiguousarray(im), quality=q),
                ".jpg",
                lambda root, rel: simplejpeg.decode_jpeg((root / rel).read_bytes()),
            )
    try:
        from turbojpeg import TurboJPEG
    except ImportError:
        pass
    else:
        tj = TurboJPEG()
        for q in (95, 90):
            found[f"jpeg q{q} (turbojpeg)"] = per_frame(
                lambda im, q=q: tj.encode(im[..., ::-1].copy(), quality=q),
                ".jpg",
                lambda root, rel: tj.decode((root / rel).read_bytes())[..., ::-1],
            )
    return found


def timed(work: Callable, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = work(*args)
    return time.perf_counter() - start, result


def fidelity(fresh: list[np.ndarray], cached: list[np.ndarray], cfg: QualityConfig) -> dict:
    max_diff = max(
        int(np.abs(a.astype(np.int16) - b).max()) for a, b in zip(fresh, cached, strict=True)
    )
    score_delta, sharp_rel, flips = 0.0, [], Counter()
    for a, b in zip(fresh, cached, strict=True):
        sa, sb = score_image(a, cfg), score_image(b, cfg)
        score_delta = max(score_delta, abs(sa["tech_quality_score"] - sb["tech_quality_score"]))
        sharp_rel.append(sb["tech_blur_laplacian_var"] / sa["tech_blur_laplacian_var"] - 1)
        flips.update(
            k.removeprefix("tech_is_") for k in sa if k.startswith("tech_is_") and sa[k] != sb[k]
        )
    return {"max_diff": max_diff, "score_delta": score_delta, "sharp": sharp_rel, "flips": flips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--per-episode", type=int, default=25, help="keyframes per episode")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = quality_config()
    groups = decode_keyframes(args.data, args.per_episode)
    fresh = [im for g in groups for im in g]
    n = len(fresh)
    score_s = statistics.median(
        timed(lambda: [score_image(im, cfg) for im in fresh])[0] for _ in range(3)
    )
    rows = {}
    for name, (write, read) in formats().items():
        writes, reads = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                seconds, handles = timed(write, root, groups)
                writes.append(seconds)
                files = [p for p in root.rglob("*") if p.is_file()]
                size = sum(p.stat().st_size for p in files)
                read(root, handles)  # first read after the write: same page-cache state for all
                seconds, cached = timed(read, root, handles)
                reads.append(seconds)
        rows[name] = {
            "write": n / statistics.median(writes),
            "read": n / statistics.median(reads),
            "bytes": size / n,
            **fidelity(fresh, cached, cfg),
        }
    shape = "x".join(str(s) for s in fresh[0].shape)
    print(
        f"{n} keyframes ({shape}, {len(groups)} episode/camera files) of {args.data.name}; "
        f"median of {args.repeats} repeats; score_image alone: {n / score_s:.0f} img/s"
    )
    print(
        "| format | write img/s | read img/s | read vs PNG | KB/frame | size vs PNG "
        "| max abs px diff | max abs delta quality score | median delta Laplacian var "
        "| flags flipped (of 200 each) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = rows["png (today)"]
    for name, r in rows.items():
        print(
            f"| {name} | {r['write']:.0f} | {r['read']:.0f} | {r['read'] / base['read']:.1f}x "
            f"| {r['bytes'] / 1024:.0f} | {r['bytes'] / base['bytes']:.2f}x | {r['max_diff']} "
            f"| {r['score_delta']:.4f} | {100 * statistics.median(r['sharp']):+.1f} % "
            f"| {', '.join(f'{k} {v}' for k, v in sorted(r['flips'].items())) or 0} |"
        )


if __name__ == "__main__":
    main()
