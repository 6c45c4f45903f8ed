"""HDF5 datasets (robomimic, LIBERO, ALOHA/ACT, declared layouts): reading, damage, the
`enrichments` sidecar, and the whole graph over each."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pytest

from enrich_assets.datasets.episode import read_frames
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.hdf5 import writeback
from enrich_assets.datasets.hdf5.reader import HDF5Reader
from enrich_assets.datasets.open import open_dataset
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.enrich.episode.manifest import build_manifest
from enrich_assets_tests import hdf5_fixtures as fx
from enrich_assets_tests.conftest import real_fixture


@pytest.fixture(scope="module")
def sample() -> list[fx.Ep]:
    return fx.sample_episodes(3)


def _build(kind: str, tmp: Path, eps: list[fx.Ep]) -> Path:
    if kind == "robomimic":
        return fx.write_robomimic(tmp / "lift.hdf5", eps)
    if kind == "libero":
        return fx.write_libero(tmp / "put_the_cube_demo.hdf5", eps, "put the cube left")
    return fx.write_aloha(tmp / "aloha_sim", eps, compress=kind == "aloha_jpeg")


LAYOUTS = {  # kind -> (task, fps, cameras, max mean abs pixel error)
    "robomimic": ("Lift", 20.0, ["agentview_image", "robot0_eye_in_hand_image"], 0.0),
    "libero": ("put the cube left", 20.0, ["agentview_rgb", "eye_in_hand_rgb"], 0.0),
    "aloha_raw": ("aloha sim", 50.0, ["agentview", "robot0_eye_in_hand"], 0.0),
    "aloha_jpeg": ("aloha sim", 50.0, ["agentview", "robot0_eye_in_hand"], 8.0),
}


@pytest.mark.parametrize("kind", list(LAYOUTS))
def test_each_layout_is_detected_and_serves_its_frames_and_rows(kind, sample, tmp_path) -> None:  # noqa: ANN001
    task, fps, cameras, tolerance = LAYOUTS[kind]
    reader = open_dataset(_build(kind, tmp_path, sample), "d")
    refs = reader.episodes()
    assert reader.format == "hdf5" and len(refs) == 3
    assert [r.length for r in refs] == [len(e.action) for e in sample]
    assert (refs[1].task, refs[1].fps, refs[1].cameras) == (task, fps, cameras)
    rows = read_frames(refs[1])
    assert np.allclose(np.stack(rows.column("action").to_pylist()), sample[1].action)
    assert np.allclose(np.stack(rows.column("observation.state").to_pylist()), sample[1].state)
    assert rows.column("timestamp").to_pylist()[1] == pytest.approx(1 / fps)
    manifest = build_manifest(refs[1])
    assert [m["tech_codec"] for m in manifest] == ["jpeg" if tolerance else "raw"] * 2
    original = list(sample[1].frames.values())
    for kf in extract_keyframes(refs[1], KeyframePolicy(count=4)):
        truth = original[cameras.index(kf.camera)][kf.frame_index]
        assert np.abs(kf.image.astype(int) - truth).mean() <= tolerance
    scene = extract_keyframes(refs[1], KeyframePolicy(mode="scene_change", threshold=0.05))
    assert len(scene) >= 4


def test_real_g1_frames_through_robomimic_and_aloha(tmp_path) -> None:  # noqa: ANN001
    eps = fx.g1_episodes(real_fixture("g1_v21"), count=2, frames=24)
    for location in (
        fx.write_robomimic(tmp_path / "g1.hdf5", eps),
        fx.write_aloha(tmp_path / "g1_aloha", eps),
    ):
        refs = open_dataset(location, "g1").episodes()
        assert [r.length for r in refs] == [24, 24]
        assert build_manifest(refs[1])[0]["tech_height"] == 120
        frames = extract_keyframes(refs[1], KeyframePolicy(count=3))
        for kf in frames:
            error = np.abs(kf.image.astype(int) - eps[1].frames["agentview"][kf.frame_index])
            assert error.mean() < 6.0
        state = np.stack(read_frames(refs[1]).column("observation.state").to_pylist())
        assert np.allclose(state, eps[1].state)


def test_demos_in_natural_order_and_a_folder_of_files(sample, tmp_path) -> None:  # noqa: ANN001
    eps = [*sample, *sample, *sample, *sample][:11]
    fx.write_robomimic(tmp_path / "many.hdf5", eps)
    reader = open_dataset(tmp_path / "many.hdf5", "m")
    assert isinstance(reader, HDF5Reader)
    names = [reader.episode_names()[i].group for i in range(11)]
    assert (
        names[:3] == ["data/demo_0", "data/demo_1", "data/demo_2"] and names[10] == "data/demo_10"
    )
    folder = tmp_path / "suite"
    folder.mkdir()
    fx.write_libero(folder / "task_2.hdf5", sample[:2], "second")
    fx.write_libero(folder / "task_10.hdf5", sample[:1], "tenth")
    refs = open_dataset(folder, "s").episodes()
    assert [(r.episode_index, r.task) for r in refs] == [(0, "second"), (1, "second"), (2, "tenth")]


def test_a_damaged_demo_or_file_fails_only_its_episode(sample, tmp_path) -> None:  # noqa: ANN001
    path = fx.write_robomimic(tmp_path / "lift.hdf5", sample)
    with h5py.File(path, "a") as f:  # demo_1's camera truncated to 5 frames
        frames = f["data/demo_1/obs/agentview_image"][:5]
        del f["data/demo_1/obs/agentview_image"]
        f["data/demo_1/obs/agentview_image"] = frames
    refs = open_dataset(path, "d").episodes()
    with pytest.raises(EpisodeError, match=r"demo_1/obs/agentview_image: holds 5 frames"):
        build_manifest(refs[1])
    assert len(extract_keyframes(refs[0], KeyframePolicy())) == 10
    assert len(build_manifest(refs[2])) == 2

    folder = fx.write_aloha(tmp_path / "aloha", sample)
    with h5py.File(folder / "episode_1.hdf5", "a") as f:  # one JPEG frame is garbage
        f["observations/images/agentview"][11] = np.frombuffer(b"\xff\xd8\xffjunk", np.uint8)
    (folder / "episode_2.hdf5").write_bytes(b"not hdf5 at all")
    refs = open_dataset(folder, "a").episodes()
    assert len(refs) == 3 and refs[2].problem is not None
    with pytest.raises(EpisodeError, match=r"episode_1.hdf5:/observations/images/agentview\[11\]"):
        extract_keyframes(refs[1], KeyframePolicy(mode="scene_change"))
    with pytest.raises(EpisodeError, match="episode_2.hdf5: not a readable HDF5 file"):
        read_frames(refs[2])
    assert len(extract_keyframes(refs[0], KeyframePolicy())) == 10


def test_a_declared_layout(sample, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "custom.h5"
    with h5py.File(path, "w") as f:
        f.attrs["instruction"] = "stack the cups"
        for i, e in enumerate(sample):
            f[f"runs/run{i}/cams/top"] = e.frames["agentview"]
            f[f"runs/run{i}/robot/q"] = e.state[:, :4]
            f[f"runs/run{i}/robot/grip"] = e.state[:, 4:]
            f[f"runs/run{i}/robot/cmd"] = e.action
    with pytest.raises(DatasetError, match="unknown HDF5 layout.*custom.h5.layout.yaml"):
        open_dataset(path, "c").episodes()
    layout = path.with_name("custom.h5.layout.yaml")
    layout.write_text("episodes: runs/*\ncameras: {top: cams/top}\nfps: 15\nbogus: 1\n")
    with pytest.raises(DatasetError, match="layout key bogus"):
        open_dataset(path, "c")
    layout.write_text(
        "episodes: runs/*\ncameras: {top: cams/top}\nstate: [robot/q, robot/grip]\n"
        "action: robot/cmd\ntask: 'attr:instruction'\nfps: 15\n"
    )
    refs = open_dataset(path, "c").episodes()
    assert [(r.task, r.fps, r.cameras) for r in refs][0] == ("stack the cups", 15.0, ["top"])
    state = np.stack(read_frames(refs[2]).column("observation.state").to_pylist())
    assert np.allclose(state, sample[2].state)
    kf = extract_keyframes(refs[2], KeyframePolicy(count=2))
    assert np.array_equal(kf[1].image, sample[2].frames["agentview"][-1])


def _catalog_rows(episodes: int) -> dict[str, pl.DataFrame]:
    keys = [(e, "cam", f) for e in range(episodes) for f in (0, 5)]
    base = {
        "episode_index": [k[0] for k in keys],
        "camera": [k[1] for k in keys],
        "frame_index": [k[2] for k in keys],
    }
    n = len(keys)
    return {
        "keyframes": pl.DataFrame(base),
        "ai_caption": pl.DataFrame(
            {**base, "ai_caption": [f"caption {k}" for k in keys], "ai_model_id": ["vlm"] * n}
        ),
        "ai_embedding": pl.DataFrame(
            {**base, "ai_embedding": [[float(i)] * 4 for i in range(n)], "code_version": ["e1"] * n}
        ),
        "ai_detections": pl.DataFrame({**base, "ai_detections": ['[{"label": "cup"}]'] * n}),
        "ai_depth": pl.DataFrame({**base, "ai_depth_path": [f"d{i}" for i in range(n)]}),
        "tech_quality": pl.DataFrame({**base, "tech_quality_score": [0.5] * n}),
    }


def test_sidecar_write_back_reopens_and_a_crash_keeps_the_previous_one(
    sample, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    path = fx.write_robomimic(tmp_path / "lift.hdf5", sample)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    reader = HDF5Reader(path, "d")
    depth = {f"d{i}": np.full((6, 8), i, np.float32) for i in range(6)}
    bundles = writeback.episode_enrichments(_catalog_rows(3), depth.__getitem__)
    out = writeback.write_sidecar(path, reader.episode_names(), bundles, {"dataset_id": "d"})
    assert out == tmp_path / "lift.enrich.h5"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    with h5py.File(out, "r") as f:
        g = f["data/demo_2/enrichments"]
        assert [c.decode() for c in g["captions"][:]] == [
            "caption (2, 'cam', 0)",
            "caption (2, 'cam', 5)",
        ]
        assert g["embeddings"].dtype == np.float32 and g["embeddings"].shape == (2, 4)
        assert g["depth"].dtype == np.float16 and g["depth"].chunks == (1, 6, 8)
        assert g["depth"].compression == "gzip" and float(g["depth"][1, 0, 0]) == 5.0
        assert list(g["keyframe_index"][:]) == [0, 5] and g["quality"][0] == np.float32(0.5)
        assert g.attrs["schema_version"] == 1 and '"ai_caption": "vlm"' in g.attrs["model_ids"]
        assert '"ai_embedding": "e1"' in g.attrs["code_versions"]
    saved = out.read_bytes()

    def crash(group, e, attrs) -> None:  # noqa: ANN001 - the disk fills mid-write
        raise OSError("No space left on device")

    monkeypatch.setattr(writeback, "_write_episode", crash)
    with pytest.raises(OSError, match="No space"):
        writeback.write_sidecar(path, reader.episode_names(), bundles, {})
    assert out.read_bytes() == saved and not list(tmp_path.glob(".tmp-*"))


def test_each_hdf5_format_through_the_whole_graph(settings, sample, tmp_path) -> None:  # noqa: ANN001
    from enrich_assets.app.run_driver import materialize_dataset
    from enrich_assets.definitions import build_definitions

    defs = build_definitions()
    robomimic = fx.write_robomimic(tmp_path / "lift.hdf5", sample)
    with h5py.File(robomimic, "a") as f:  # demo_2 damaged: only episode 2 fails
        del f["data/demo_2/obs/agentview_image"]
    aloha = fx.write_aloha(tmp_path / "aloha", sample[:2])
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in [robomimic, *aloha.glob("*")]}
    report = materialize_dataset(defs, settings, robomimic)
    assert {ep for _, ep, status, _ in report.failures if status == "failed"} == {2}
    assert report.summary["keyframes"]["ok"] == 2
    report = materialize_dataset(defs, settings, aloha)
    assert report.ok, report.failures
    for p, sha in digest.items():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == sha, f"{p} changed"
    with h5py.File(tmp_path / "lift.enrich.h5", "r") as f:
        assert sorted(f["data"]) == ["demo_0", "demo_1"]
        g = f["data/demo_0/enrichments"]
        assert len(g["captions"]) == len(g["keyframe_index"]) == 10
        assert all(c for c in g["captions"][:]) and g["embeddings"].shape[0] == 10
    with h5py.File(tmp_path / "aloha.enrich.h5", "r") as f:
        assert sorted(f) == ["episode_0", "episode_1"]
        assert f["episode_1/enrichments/depth"].shape[0] == 10
