"""Readers and decoding on the real fixtures, and every kind of bad input named clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.lerobot.reader import open_lerobot, read_frames
from enrich_assets.datasets.video import decode_all, decode_at
from enrich_assets.enrich.episode.keyframes import KeyframePolicy, extract_keyframes
from enrich_assets.enrich.episode.manifest import build_manifest
from enrich_assets_tests.conftest import real_fixture


@pytest.mark.parametrize("name", ["g1_v30", "g1_v21"])
def test_real_fixture_episodes(name: str) -> None:
    reader = open_lerobot(real_fixture(name), name)
    episodes = reader.episodes()
    assert [e.length for e in episodes] == [393, 343, 357, 368, 410, 445, 290, 421]
    assert reader.cameras == ["observation.images.cam_high"]
    assert episodes[0].task == "Pick up the yellow bottle on the table."
    rows = build_manifest(episodes[5])
    assert rows[0]["tech_codec"] == "av1" and (rows[0]["tech_height"], rows[0]["tech_width"]) == (
        480,
        640,
    )


def test_seeking_decoder_matches_full_decode_and_both_versions() -> None:
    v30, v21 = (open_lerobot(real_fixture(n), n).episodes()[5] for n in ("g1_v30", "g1_v21"))
    ts = read_frames(v21).column("timestamp").to_numpy()
    wanted = [0, 222, 444]
    cam = v21.cameras[0]
    a = decode_at(v21.videos[cam].path, ts[wanted], v21.fps)
    b = decode_at(v30.videos[cam].path, v30.videos[cam].from_timestamp + ts[wanted], v30.fps)
    every = list(decode_all(v21.videos[cam].path))
    for i, w in enumerate(wanted):
        assert np.array_equal(a[i], every[w]) and np.array_equal(b[i], every[w])


def _damage_info(root: Path, change) -> None:  # noqa: ANN001
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def test_missing_and_malformed_info_json(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    (root / "meta/info.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"info\.json: malformed JSON"):
        open_lerobot(root, "x")
    (root / "meta/info.json").unlink()
    with pytest.raises(DatasetError, match=r"info\.json: missing"):
        open_lerobot(root, "x")


def test_template_escaping_the_root(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v30")
    _damage_info(
        root, lambda i: i.update(video_path="../../etc/{video_key}/{chunk_index}-{file_index}.mp4")
    )
    with pytest.raises(DatasetError, match="video_path escapes the dataset root"):
        open_lerobot(root, "x")


def test_episode_row_past_its_data_file_and_zero_length(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    lines = (root / "meta/episodes.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    rows[2]["length"] = 9999
    rows[3]["length"] = 0
    (root / "meta/episodes.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    episodes = open_lerobot(root, "x").episodes()
    with pytest.raises(EpisodeError, match="points past its data file") as err:
        read_frames(episodes[2])
    assert "episode_000002.parquet" in str(err.value)
    with pytest.raises(EpisodeError, match="zero length"):
        read_frames(episodes[3])
    assert read_frames(episodes[4]).num_rows == 410  # the others still read


def test_missing_and_truncated_video(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    videos = sorted((root / "videos").rglob("*.mp4"))
    videos[1].unlink()
    data = videos[2].read_bytes()
    videos[2].write_bytes(data[: len(data) // 3])
    episodes = open_lerobot(root, "x").episodes()
    with pytest.raises(EpisodeError, match="video file is missing") as err:
        build_manifest(episodes[1])
    assert "episode_000001.mp4" in str(err.value)
    with pytest.raises(EpisodeError, match="episode_000002.mp4"):
        build_manifest(episodes[2])
    with pytest.raises(EpisodeError, match="episode_000002.mp4"):  # the decoder names it too
        extract_keyframes(episodes[2], KeyframePolicy())


def test_v3_episode_pointing_past_the_shared_data_file(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v30")
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    lengths = table.column("length").to_pylist()
    lengths[7] = 500
    import pyarrow as pa

    pq.write_table(
        table.set_column(table.schema.get_field_index("length"), "length", pa.array(lengths)), path
    )
    episodes = open_lerobot(root, "x").episodes()
    with pytest.raises(EpisodeError, match="should have 500 rows"):
        read_frames(episodes[7])
    assert read_frames(episodes[6]).num_rows == 290
