"""The synthetic sample dataset: determinism, v3.0 layout, decodable video, planted defects."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from enrich_assets.datasets.lerobot.v3_writer import FileLimits
from enrich_assets.datasets.sample.generator import (
    CAMERAS,
    TRUTH_PATH,
    plan_dataset,
    render_episode,
    write_sample_dataset,
)

EPISODES = 6
FRAMES = (24, 32)
SIZE = dict(width=96, height=64)


def _write(root: Path, seed: int = 0, **kwargs) -> Path:
    options = dict(episodes=EPISODES, seed=seed, frames_per_episode=FRAMES, **SIZE)
    return write_sample_dataset(root, **{**options, **kwargs})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("sample") / "ds")


def _episodes(root: Path) -> dict[str, list]:
    return pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pydict()


def _truth(root: Path) -> dict:
    return json.loads((root / TRUTH_PATH).read_text())


def _decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="rgb24") for f in frames], [
        float(f.pts * f.time_base) for f in frames
    ]


def _episode_frames(root: Path, key: str, episode: int) -> np.ndarray:
    """Decoded frames of one episode, picked by time from its file (as lerobot does)."""
    eps = _episodes(root)
    fps = json.loads((root / "meta/info.json").read_text())["fps"]
    file = root / f"videos/{key}/chunk-000/file-{eps[f'videos/{key}/file_index'][episode]:03d}.mp4"
    frames, times = _decode(file)
    start = eps[f"videos/{key}/from_timestamp"][episode]
    wanted = start + np.arange(eps["length"][episode], dtype=np.float32) / fps
    nearest = np.abs(np.asarray(times)[None, :] - wanted[:, None]).argmin(axis=1)
    assert np.abs(np.asarray(times)[nearest] - wanted).max() < 1e-4
    return np.stack([frames[i] for i in nearest])


def _laplacian_variance(image: np.ndarray) -> float:
    gray = image.astype(np.float64).mean(axis=2)
    lap = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4 * gray[1:-1, 1:-1]
    return float(lap.var())


def test_same_seed_gives_identical_dataset_and_other_seed_differs(dataset, tmp_path):
    again = _write(tmp_path / "again")
    other = _write(tmp_path / "other", seed=1)
    tables = ["data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet"]
    for rel in [*tables, "meta/tasks.parquet"]:
        assert pq.read_table(dataset / rel).equals(pq.read_table(again / rel)), rel
    for rel in ["meta/info.json", "meta/stats.json", TRUTH_PATH]:
        assert (dataset / rel).read_text() == (again / rel).read_text(), rel
    for key in CAMERAS:
        video = f"videos/{key}/chunk-000/file-000.mp4"
        ours, theirs = _decode(dataset / video)[0], _decode(again / video)[0]
        assert len(ours) == len(theirs)
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    for rel in tables:
        assert not pq.read_table(dataset / rel).equals(pq.read_table(other / rel)), rel
    assert _truth(dataset)["episodes"][0]["task"] != _truth(other)["episodes"][0]["task"] or (
        _truth(dataset)["episodes"][0]["objects"] != _truth(other)["episodes"][0]["objects"]
    )


def test_layout_and_metadata_are_consistent(dataset):
    info = json.loads((dataset / "meta/info.json").read_text())
    eps = _episodes(dataset)
    data = pq.read_table(dataset / "data/chunk-000/file-000.parquet").to_pydict()
    lengths = eps["length"]
    fps = info["fps"]
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == EPISODES == len(lengths)
    assert info["total_frames"] == sum(lengths) == len(data["index"])
    assert info["splits"] == {"train": f"0:{EPISODES}"}
    for key in CAMERAS:
        feature = info["features"][key]
        assert feature["dtype"] == "video" and feature["shape"] == [64, 96, 3]
        assert (
            feature["info"]["video.codec"] == "av1"
            and feature["info"]["video.pix_fmt"] == "yuv420p"
        )
    assert info["features"]["observation.state"]["shape"] == [6]

    assert eps["dataset_from_index"] == [sum(lengths[:i]) for i in range(EPISODES)]
    assert eps["dataset_to_index"] == [sum(lengths[: i + 1]) for i in range(EPISODES)]
    assert data["index"] == list(range(sum(lengths)))
    for i, (start, stop) in enumerate(
        zip(eps["dataset_from_index"], eps["dataset_to_index"], strict=True)
    ):
        assert set(data["episode_index"][start:stop]) == {i}
        assert data["frame_index"][start:stop] == list(range(lengths[i]))
        expected = (np.arange(lengths[i]) / fps).astype(np.float32)
        assert np.array_equal(np.asarray(data["timestamp"][start:stop], np.float32), expected)
        for key in CAMERAS:
            from_ts = eps[f"videos/{key}/from_timestamp"][i]
            assert eps[f"videos/{key}/to_timestamp"][i] - from_ts == pytest.approx(lengths[i] / fps)
            previous = eps[f"videos/{key}/to_timestamp"][i - 1] if i else 0.0
            assert from_ts == previous
        assert eps[f"stats/{CAMERAS[0]}/count"][i] == [lengths[i]]
        state = np.asarray(data["observation.state"][start:stop])
        assert np.allclose(eps["stats/observation.state/mean"][i], state.mean(axis=0), atol=1e-6)

    tasks = pq.read_table(dataset / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    task_index = dict(zip(tasks["task"].to_pylist(), tasks["task_index"].to_pylist(), strict=True))
    for i, start in enumerate(eps["dataset_from_index"]):
        assert data["task_index"][start] == task_index[eps["tasks"][i][0]]
    assert info["total_tasks"] == len(task_index)

    stats = json.loads((dataset / "meta/stats.json").read_text())
    assert stats["index"]["count"] == [sum(lengths)]
    assert stats["index"]["max"] == [sum(lengths) - 1]
    all_state = np.asarray(data["observation.state"])
    assert np.allclose(stats["observation.state"]["mean"], all_state.mean(axis=0), atol=1e-6)
    assert np.allclose(stats["observation.state"]["std"], all_state.std(axis=0), atol=1e-6)
    assert np.asarray(stats[CAMERAS[0]]["mean"]).shape == (3, 1, 1)


def test_every_frame_decodes_at_its_timestamp_and_matches_the_render(dataset):
    eps = _episodes(dataset)
    plans, _ = plan_dataset(EPISODES, 0, FRAMES)
    for key in CAMERAS:
        frames, _ = _decode(dataset / f"videos/{key}/chunk-000/file-000.mp4")
        assert len(frames) == sum(eps["length"])
    for episode in (0, EPISODES - 1):
        rendered, _ = render_episode(plans[episode], CAMERAS, **SIZE)
        for key in CAMERAS:
            decoded = _episode_frames(dataset, key, episode)
            error = np.abs(decoded.astype(np.int16) - rendered[key].astype(np.int16)).mean()
            assert error < 6.0, (key, episode, error)


def test_planted_defects_are_really_there(dataset):
    defects = _truth(dataset)["defects"]
    assert set(defects) == {"blurry", "dark_episode", "black_segment", "near_duplicate"}
    key = CAMERAS[0]

    dark = _episode_frames(dataset, key, defects["dark_episode"]["episode_index"])
    bright = _episode_frames(dataset, key, defects["near_duplicate"]["source_episode_index"])
    assert dark.mean() < 30 < bright.mean()

    black = defects["black_segment"]
    frames = _episode_frames(dataset, key, black["episode_index"])
    assert frames[black["frame_indices"]].max() <= 4
    assert frames[black["frame_indices"][-1] + 1].mean() > 50

    blurry = defects["blurry"]
    frames = _episode_frames(dataset, key, blurry["episode_index"])
    for t in blurry["frame_indices"]:
        neighbours = [_laplacian_variance(frames[n]) for n in (t - 1, t + 1)]
        assert _laplacian_variance(frames[t]) < 0.3 * min(neighbours), t

    pair = defects["near_duplicate"]
    copy = _episode_frames(dataset, key, pair["episode_index"]).astype(np.int16)
    source = _episode_frames(dataset, key, pair["source_episode_index"]).astype(np.int16)
    assert copy.shape == source.shape
    near = np.abs(copy - source).mean()
    others = set(range(EPISODES)) - {pair["episode_index"], pair["source_episode_index"]}
    for other in others:
        frames = _episode_frames(dataset, key, other).astype(np.int16)
        n = min(len(copy), len(frames))
        assert near < 0.2 * np.abs(copy[:n] - frames[:n]).mean(), other


def test_ground_truth_describes_each_episode(dataset):
    truth = _truth(dataset)
    eps = _episodes(dataset)
    for record, length, tasks in zip(truth["episodes"], eps["length"], eps["tasks"], strict=True):
        assert record["length"] == length and [record["task"]] == tasks
        assert record["target"] in record["task"]
        subtasks = record["subtasks"]
        assert [s["name"] for s in subtasks] == ["reach", "grasp", "carry", "place"]
        assert subtasks[0]["start_frame"] == 0 and subtasks[-1]["end_frame"] == length
        assert all(
            a["end_frame"] == b["start_frame"] for a, b in zip(subtasks, subtasks[1:], strict=False)
        )
        grasp, release = record["grasp_frame_index"], record["release_frame_index"]
        assert subtasks[2] == {"name": "carry", "start_frame": grasp, "end_frame": release}
        for key in CAMERAS:
            boxes = record["boxes"][key]
            assert set(boxes) == {o["name"] for o in record["objects"]} | {"gripper"}
            assert all(len(seq) == length for seq in boxes.values())
            target = boxes[record["target"]]
            assert target[0] == target[grasp] and target[grasp] != target[release]
            for other in {o["name"] for o in record["objects"]} - {record["target"]}:
                assert len({tuple(b) for b in boxes[other]}) == 1
            x0, y0, x1, y1 = target[0]
            assert 0 <= x0 <= x1 < 96 and 0 <= y0 <= y1 < 64


def test_rollover_to_a_second_file(tmp_path):
    limits = FileLimits(episodes_per_file=2)
    root = _write(
        tmp_path / "ds", episodes=3, cameras=1, frames_per_episode=(20, 22), limits=limits
    )
    eps = _episodes(root)
    key = CAMERAS[0]
    assert eps["data/file_index"] == [0, 0, 1] and eps[f"videos/{key}/file_index"] == [0, 0, 1]
    assert eps[f"videos/{key}/from_timestamp"][2] == 0.0
    second = pq.read_table(root / "data/chunk-000/file-001.parquet").to_pydict()
    assert second["episode_index"] == [2] * eps["length"][2]
    assert second["index"][0] == eps["dataset_from_index"][2]
    frames, _ = _decode(root / f"videos/{key}/chunk-000/file-001.mp4")
    assert len(frames) == eps["length"][2]
    assert not (root / f"videos/{CAMERAS[1]}").exists()


def test_refuses_to_overwrite_a_non_empty_directory(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        _write(tmp_path / "ds", episodes=1)
    assert (tmp_path / "ds" / "keep.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary folder left behind
