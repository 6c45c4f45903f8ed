"""The keyframe cache: raw arrays per episode/camera, content-addressed, bit-exact on read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.enrich.episode.quality import QualityConfig, score_image
from enrich_assets.models.registry import load_model_spec
from enrich_assets.models.vision.image_embedder import load_image_embedder
from enrich_assets.store.images import load_image, load_images, save_keyframes
from enrich_assets_tests.conftest import real_fixture

EMBEDDING_TOLERANCE = 1e-6  # docs/benchmarks.md: cached vs freshly decoded frames


def frames(n: int, seed: int, shape: tuple[int, int] = (12, 16)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(n)]


def test_one_file_per_call_named_by_content_and_written_once(tmp_path: Path) -> None:
    first, second = frames(3, 0), frames(2, 1, (8, 8))
    refs = save_keyframes(tmp_path, first)
    assert [r.rsplit("#", 1)[1] for r in refs] == ["0", "1", "2"]
    files = list((tmp_path / "keyframes").rglob("*.npy"))
    assert len(files) == 1 and files[0].stem in refs[0]
    written = files[0].stat().st_mtime_ns
    assert save_keyframes(tmp_path, first) == refs  # idempotent: same bytes, same file
    assert files[0].stat().st_mtime_ns == written
    other = save_keyframes(tmp_path, second)
    assert other[0].split("#")[0] != refs[0].split("#")[0]
    assert not list(tmp_path.rglob("*.partial"))
    # any order, across files: bit-exact, and writable copies (not views of the mapping)
    loaded = load_images(tmp_path, [refs[2], other[1], refs[0]])
    for got, want in zip(loaded, [first[2], second[1], first[0]], strict=True):
        assert got.dtype == np.uint8 and np.array_equal(got, want)
        assert got.flags.writeable
    assert np.array_equal(load_image(tmp_path, refs[1]), first[1])


def test_older_png_references_still_load(tmp_path: Path) -> None:
    (image,) = frames(1, 2)
    Image.fromarray(image).save(tmp_path / "old.png")
    (ref,) = save_keyframes(tmp_path, [image])
    png, cached = load_images(tmp_path, ["old.png", ref])
    assert np.array_equal(png, image) and np.array_equal(cached, image)


def test_bad_cache_input_is_one_clear_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="share one HxWx3 shape"):
        save_keyframes(tmp_path, [*frames(1, 0), *frames(1, 0, (8, 8))])
    refs = save_keyframes(tmp_path, frames(2, 3))
    file = tmp_path / refs[0].split("#")[0]
    with pytest.raises(ValueError, match=rf"{file.name}: no frame 5 \(holds 2\)"):
        load_image(tmp_path, refs[0].replace("#0", "#5"))
    with pytest.raises(ValueError, match=r"needs '#<frame position>'"):
        load_image(tmp_path, refs[0].replace("#0", "#x"))
    file.write_bytes(file.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match=rf"{file.name}: keyframe cache file unreadable"):
        load_image(tmp_path, refs[0])
    file.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{file.name}: keyframe cache file missing"):
        load_image(tmp_path, refs[0])


def test_cached_frames_score_and_embed_like_freshly_decoded_ones(tmp_path: Path) -> None:
    """Fidelity on the real fixture: quality identical, embeddings within the tolerance."""
    root = real_fixture("g1_v30")
    ref = open_lerobot(root, root.name).episodes()[0]
    decoded = [kf.image for kf in extract_keyframes(ref, KeyframePolicy(count=4))]
    cached = load_images(tmp_path, save_keyframes(tmp_path, decoded))
    cfg = QualityConfig()
    assert [score_image(c, cfg) for c in cached] == [score_image(d, cfg) for d in decoded]
    model = load_image_embedder(load_model_spec("embedding", "tiny"), device="cpu")
    fresh, again = model.embed_images(decoded), model.embed_images(cached)
    assert np.abs(fresh - again).max() <= EMBEDDING_TOLERANCE
