"""RLDS / TFDS builder directories read without TensorFlow: against files the real TFDS wrote
(`fixtures/rlds/`, from `compat/make_tfds_reference.py`), the settings file, damage, real G1
pixels, and the whole graph."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from tfrecord import example_pb2
from tfrecord.reader import tfrecord_iterator
from tfrecord.writer import TFRecordWriter

from enrich_assets.datasets.episode import read_frames
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.frames import frames_at
from enrich_assets.datasets.open import change_signature, open_dataset
from enrich_assets.datasets.rlds import tfrecord
from enrich_assets.datasets.rlds.reader import RLDSReader, shards
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.enrich.episode.manifest import build_manifest
from enrich_assets.store.registry import location_name
from enrich_assets_tests import hdf5_fixtures as fx
from enrich_assets_tests import rlds_fixtures as rf
from enrich_assets_tests.compat import tfds_reference_values as v
from enrich_assets_tests.conftest import real_fixture

FIXTURES = Path(__file__).parent / "fixtures" / "rlds"


def _copy(name: str, tmp: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name / "1.0.0", tmp / name / "1.0.0"))


def _column(table, name: str) -> np.ndarray:  # noqa: ANN001
    return np.stack(table.column(name).to_numpy(zero_copy_only=False))


def _error(got: np.ndarray, want: np.ndarray) -> float:
    """Median absolute pixel error: robust to JPEG's ringing at the test images' wrap edges."""
    return float(np.median(np.abs(got.astype(int) - want.astype(int))))


def _ids_in_record_order(root: Path) -> list[int]:
    """The generated episode ids in TFDS's record order, read with the tfrecord package's own
    iterator: an independent account of what the reader must number 0.."""
    out = []
    for _, shard in shards(root):
        for record in tfrecord_iterator(str(shard)):
            example = example_pb2.Example.FromString(bytes(record))
            out.append(example.features.feature["episode_metadata/episode_id"].int64_list.value[0])
    return out


@pytest.mark.parametrize("name", ["tiny_rlds", "tiny_bridge"])
def test_real_tfds_output_field_by_field(name: str) -> None:
    root = FIXTURES / name / "1.0.0"
    bridge = name == "tiny_bridge"
    refs = open_dataset(root, name).episodes()
    ids = _ids_in_record_order(root)
    assert sorted(ids) == list(range(len(v.STEPS))) and ids != sorted(ids)  # TFDS shuffled
    assert [r.episode_index for r in refs] == list(range(len(ids)))
    for ref, gen in zip(refs, ids, strict=True):
        steps = v.STEPS[gen]
        assert (ref.task, ref.length, ref.fps) == (v.TASKS[gen], steps, 10.0)
        assert ref.cameras == (["image"] if bridge else ["image", "wrist_image"])
        assert ref.resolution["image"] == (v.SIZE, v.SIZE)
        table = read_frames(ref)
        assert table["frame_index"].to_pylist() == list(range(steps))
        assert np.allclose(table["timestamp"].to_numpy(), np.arange(steps) / 10.0)
        assert set(table["episode_index"].to_pylist()) == {ref.episode_index}
        dim = 7 if bridge else 4
        expected_state = np.stack([v.state(gen, t, dim) for t in range(steps)])
        assert np.array_equal(_column(table, "observation.state"), expected_state)
        expected_action = [
            v.bridge_action_vector(gen, t) if bridge else v.action(gen, t) for t in range(steps)
        ]
        assert np.array_equal(_column(table, "action"), np.stack(expected_action))
        positions = [0, steps - 1]
        image = frames_at(ref.frames["image"], positions, table["timestamp"].to_numpy(), 10.0)
        for position, got in zip(positions, image, strict=True):
            assert got.shape == (v.SIZE, v.SIZE, 3)
            assert _error(got, v.image(gen, position)) <= (8 if bridge else 0)
        if not bridge:  # the JPEG wrist camera: its own pixels, not the PNG camera's
            wrist = frames_at(ref.frames["wrist_image"], [1], np.zeros(1), 10.0)[0]
            assert _error(wrist, v.image(gen, 1, camera=1)) <= 8
            assert _error(wrist[..., 2], v.image(gen, 1, camera=0)[..., 2]) > 40
        info = ref.frames["image"].probe(ref.length, 0.0, 10.0)
        assert info.codec == ("jpeg" if bridge else "png")
        assert (info.height, info.width) == (v.SIZE, v.SIZE)
        assert "tfrecord-0000" in info.location and ":record " in info.location


def test_settings_file_fps_splits_state_action(tmp_path: Path) -> None:
    root = _copy("tiny_bridge", tmp_path)
    (root / "enrich-rlds.yaml").write_text(
        "fps: 5\nsplits: [val]\nstate: [observation/state]\n"
        "action: [action/world_vector, action/open_gripper]\n"
    )
    refs = open_dataset(root, "b").episodes()
    assert [r.task for r in refs] == [v.TASKS[3], v.TASKS[4]]  # val only, shard order
    table = read_frames(refs[1])
    assert refs[1].fps == 5.0 and np.allclose(table["timestamp"].to_numpy(), [0, 0.2, 0.4])
    actions = _column(table, "action")
    want = [[*v.bridge_action(4, t)["world_vector"], t % 2 == 0] for t in range(3)]
    assert np.array_equal(actions, np.array(want, np.float32))

    (root / "enrich-rlds.yaml").write_text("fps: 5\nframerate: 3\n")
    with pytest.raises(DatasetError, match=r"enrich-rlds.yaml: framerate: Extra inputs"):
        open_dataset(root, "b")
    (root / "enrich-rlds.yaml").write_text("action: [observation/image]\n")
    with pytest.raises(DatasetError, match="action key 'observation/image' is not a fixed-shape"):
        open_dataset(root, "b")
    (root / "enrich-rlds.yaml").write_text("fps: 0\n")
    with pytest.raises(DatasetError, match="fps: Input should be greater than 0"):
        open_dataset(root, "b")


def test_detection_ids_and_change_signature(tmp_path: Path) -> None:
    root = _copy("tiny_rlds", tmp_path)
    assert open_dataset(root, "r").format == "rlds"
    assert location_name(str(root)) == "tiny_rlds_1.0.0"
    with pytest.raises(DatasetError, match="not a dataset this tool reads"):
        open_dataset(root.parent, "r")  # the unversioned folder
    before = change_signature(root)
    assert change_signature(root) == before
    os.utime(root / "tiny_rlds-val.tfrecord-00001-of-00002", ns=(1, 1))  # a shard rewritten
    rewritten = change_signature(root)
    assert rewritten != before
    (root / "enrich-rlds.yaml").write_text("fps: 4\n")
    assert change_signature(root) != rewritten


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_record_or_shard_fails_only_its_episodes(tmp_path: Path) -> None:
    root = _copy("tiny_rlds", tmp_path)
    train0 = root / "tiny_rlds-train.tfrecord-00000-of-00002"
    second = list(tfrecord.scan(train0))[1][0]
    _flip(train0, second.offset + tfrecord.HEADER + 40)  # record 1's data
    val0 = root / "tiny_rlds-val.tfrecord-00000-of-00002"
    val0.write_bytes(val0.read_bytes()[:-100])  # cut short
    refs = RLDSReader(root, "r").episodes()
    assert len(refs) == 5
    with pytest.raises(EpisodeError, match=r"train.tfrecord-00000-of-00002:record 1: .*checksum"):
        build_manifest(refs[1])
    with pytest.raises(EpisodeError, match=r"val.tfrecord-00000-of-00002:record 0: file ends"):
        read_frames(refs[3])
    for good in (0, 2, 4):
        assert len(extract_keyframes(refs[good], KeyframePolicy(count=2))) == 4
    assert refs[4].task == v.TASKS[4]  # numbering after the damage is unchanged

    # a broken length header hides the rest of its shard: the info's shardLengths keep
    # every later index in place, and both records of that shard fail
    root = _copy("tiny_bridge", tmp_path / "b")
    _flip(root / "tiny_bridge-train.tfrecord-00000-of-00002", 2)
    refs = RLDSReader(root, "b").episodes()
    assert [r.problem is not None for r in refs] == [True, True, False, False, False]
    assert "record length at byte 0 fails its checksum" in str(refs[1].problem)
    ids = _ids_in_record_order(FIXTURES / "tiny_bridge" / "1.0.0")  # the undamaged original
    assert [r.task for r in refs[2:]] == [v.TASKS[i] for i in ids[2:]]


def test_only_the_keyframes_images_are_decoded(tmp_path: Path) -> None:
    eps = fx.sample_episodes(1, size=(32, 24))
    datum = rf.example(eps[0])
    images = datum["steps/observation/agentview"][0]
    images[7] = b"\xff\xd8\xffnot a jpeg"  # a valid record whose step 7 image is garbage
    root = rf.write_builder(tmp_path, "one", eps)
    shard = next(root.glob("*.tfrecord-*"))
    writer = TFRecordWriter(str(shard))
    writer.write(datum)
    writer.close()
    ref = open_dataset(root, "one").episodes()[0]
    keyframes = extract_keyframes(ref, KeyframePolicy(count=5))
    assert 7 not in {k.frame_index for k in keyframes} and len(keyframes) == 10
    with pytest.raises(EpisodeError, match=r"record 0:steps/observation/agentview\[7\]: corrupt"):
        frames_at(ref.frames["agentview"], list(range(ref.length)), np.zeros(ref.length), 10.0)


def test_sample_and_real_g1_episodes_through_the_reader(tmp_path: Path) -> None:
    sample = fx.sample_episodes(3)
    real = fx.g1_episodes(real_fixture("g1_v21"), count=2, frames=12)
    for name, eps in (("sample", sample), ("g1", real)):
        refs = open_dataset(rf.write_builder(tmp_path, name, eps), name).episodes()
        assert len(refs) == len(eps)
        for ref, e in zip(refs, eps, strict=True):
            table = read_frames(ref)
            assert ref.task == e.task and ref.length == len(e.action)
            assert np.array_equal(_column(table, "observation.state"), e.state)
            assert np.array_equal(_column(table, "action"), e.action)
            for cam, frames in e.frames.items():
                got = frames_at(ref.frames[cam], [0, ref.length - 1], np.zeros(2), 10.0)
                for image, want in zip(got, frames[[0, -1]], strict=True):
                    assert image.shape == want.shape
                    assert np.abs(image.astype(int) - want.astype(int)).mean() < 8.0


def test_rlds_through_the_whole_graph(settings, tmp_path: Path) -> None:  # noqa: ANN001
    from enrich_assets.app.run_driver import materialize_dataset
    from enrich_assets.definitions import build_definitions
    from enrich_assets.store.catalog import Catalog

    eps = fx.sample_episodes(3, size=(32, 24))
    root = rf.write_builder(tmp_path, "sample_rlds", eps)
    shard = root / "sample_rlds-train.tfrecord-00001-of-00002"  # episode 2, alone
    _flip(shard, tfrecord.HEADER + 100)
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    report = materialize_dataset(build_definitions(), settings, root)
    assert {ep for _, ep, status, _ in report.failures if status == "failed"} == {2}
    assert report.summary["keyframes"]["ok"] == 2
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before  # read-only
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    keyframes = catalog.read("keyframes", "sample_rlds_1_0_0")
    assert sorted(set(keyframes["episode_index"].to_list())) == [0, 1]
    captions = catalog.read("ai_caption", "sample_rlds_1_0_0")
    assert set(captions["episode_index"].to_list()) == {0, 1}
    for episode in (0, 1):  # keyed by episode and step: the last keyframe is the last step
        steps = captions.filter(captions["episode_index"] == episode)["frame_index"]
        assert steps.max() == len(eps[episode].action) - 1
