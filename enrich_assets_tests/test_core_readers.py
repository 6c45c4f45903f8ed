"""Readers and decoding on the real fixtures, and every kind of bad input named clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrich_assets.datasets.episode import read_frames
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.lerobot.reader import ParquetRows, open_lerobot
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
    a = decode_at(v21.frames[cam].path, ts[wanted], v21.fps)
    b = decode_at(v30.frames[cam].path, v30.frames[cam].from_timestamp + ts[wanted], v30.fps)
    every = list(decode_all(v21.frames[cam].path))
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
    with pytest.raises(
        EpisodeError,
        match=r"episode 2: 9999 rows \(metadata length\) point past "
        r"data/chunk-000/episode_000002\.parquet \(357 rows\)",
    ):
        read_frames(episodes[2])
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
    pq.write_table(
        table.set_column(table.schema.get_field_index("length"), "length", pa.array(lengths)), path
    )
    episodes = open_lerobot(root, "x").episodes()
    with pytest.raises(EpisodeError, match="should have 500 rows"):
        read_frames(episodes[7])
    assert read_frames(episodes[6]).num_rows == 290


# --- tell the truth under failure: row ranges, missing columns, signatures, symlinks ---

EPISODES_META = "meta/episodes/chunk-000/file-000.parquet"


def _edit_episodes_meta(root: Path, change) -> None:  # noqa: ANN001
    path = root / EPISODES_META
    pq.write_table(change(pq.read_table(path)), path)


def _set_value(table, column: str, row: int, value):  # noqa: ANN001, ANN202
    values = table.column(column).to_pylist()
    values[row] = value
    index = table.schema.get_field_index(column)
    return table.set_column(index, column, pa.array(values, table.schema.field(column).type))


@pytest.fixture(scope="module")
def multi_file_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A v3.0 dataset of 4 episodes, 2 per data/video file (so global row offsets matter)."""
    from enrich_assets.datasets.lerobot.v3_writer import FileLimits
    from enrich_assets.datasets.sample.generator import write_sample_dataset

    return write_sample_dataset(
        tmp_path_factory.mktemp("multi") / "multi",
        episodes=4,
        width=32,
        height=32,
        cameras=1,
        frames_per_episode=(20, 22),
        limits=FileLimits(episodes_per_file=2),
    )


def test_v3_row_range_past_its_data_file_fails_that_episode_only(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v30")
    _edit_episodes_meta(root, lambda t: _set_value(t, "dataset_to_index", 3, 6400))
    episodes = open_lerobot(root, "x").episodes()  # the listing itself still works
    with pytest.raises(EpisodeError) as err:
        read_frames(episodes[3])
    message = str(err.value)
    assert "episode 3: rows 1093..6400 point past data/chunk-000/file-000.parquet (3027 rows)" in (
        message
    )
    assert "\n" not in message
    assert [read_frames(e).num_rows for i, e in enumerate(episodes) if i != 3] == [
        393, 343, 357, 410, 445, 290, 421
    ]  # fmt: skip


def test_v3_row_ranges_across_several_data_files(multi_file_root: Path, tmp_path: Path) -> None:
    files = sorted((multi_file_root / "data").rglob("*.parquet"))
    assert len(files) == 2
    assert all(e.problem is None for e in open_lerobot(multi_file_root, "m").episodes())
    root = Path(shutil.copytree(multi_file_root, tmp_path / "m"))
    first_rows = pq.read_metadata(files[0]).num_rows
    second_rows = pq.read_metadata(files[1]).num_rows
    # episode 2 is the first of file-001: a range starting inside file-000 is wrong for it
    _edit_episodes_meta(root, lambda t: _set_value(t, "dataset_from_index", 2, 0))
    episodes = open_lerobot(root, "m").episodes()
    with pytest.raises(EpisodeError) as err:
        read_frames(episodes[2])
    assert (
        f"point past data/chunk-000/file-001.parquet ({second_rows} rows, "
        f"{first_rows}..{first_rows + second_rows})" in str(err.value)
    )
    assert read_frames(episodes[3]).num_rows == episodes[3].length


@pytest.mark.parametrize(
    "column", ["dataset_to_index", "videos/observation.images.cam_high/file_index"]
)
def test_v3_missing_episodes_column_is_a_dataset_error(real_copy, column: str) -> None:  # noqa: ANN001
    root = real_copy("g1_v30")
    _edit_episodes_meta(root, lambda t: t.drop_columns([column]))
    with pytest.raises(DatasetError) as err:
        open_lerobot(root, "x").episodes()
    assert not isinstance(err.value, EpisodeError)
    assert (
        str(err.value)
        == f"{root / EPISODES_META}: lacks the column {column!r} (LeRobot v3.0 episode metadata)"
    )


def test_v21_episode_line_without_its_index_is_a_dataset_error(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    path = root / "meta/episodes.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    del rows[4]["episode_index"]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(
        DatasetError, match=r"episodes\.jsonl: line 5 lacks the key 'episode_index'"
    ):
        open_lerobot(root, "x").episodes()


def test_signature_is_stable_and_changes_on_a_re_recording_v21(real_copy, tmp_path: Path) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    before = open_lerobot(root, "x").signatures()
    assert len(set(before.values())) == 8 and open_lerobot(root, "x").signatures() == before
    # a plain copy (new mtimes, same content) is the same episodes
    copy = Path(shutil.copytree(root, tmp_path / "copy", copy_function=shutil.copy))
    assert open_lerobot(copy, "x").signatures() == before
    # episode 3 re-recorded: new frames and video under the same index
    data = root / "data/chunk-000"
    table = pq.read_table(data / "episode_000004.parquet")
    table = table.set_column(
        table.schema.get_field_index("episode_index"),
        "episode_index",
        pa.array([3] * table.num_rows, table.schema.field("episode_index").type),
    )
    pq.write_table(table, data / "episode_000003.parquet")
    cam = "videos/chunk-000/observation.images.cam_high"
    shutil.copy(root / cam / "episode_000004.mp4", root / cam / "episode_000003.mp4")
    path = root / "meta/episodes.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[3]["length"] = table.num_rows
    path.write_text("\n".join(json.dumps(r) for r in rows))
    after = open_lerobot(root, "x").signatures()
    assert [i for i in after if after[i] != before[i]] == [3]


def test_signature_v3_changes_only_for_the_re_recorded_episode(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v30")
    before = open_lerobot(root, "x").signatures()
    # appending episodes (shared files grow) leaves earlier signatures alone
    full = pq.read_table(root / EPISODES_META)
    pq.write_table(full.slice(0, 5), root / EPISODES_META)
    assert open_lerobot(root, "x").signatures() == {i: before[i] for i in range(5)}
    # a re-recording of episode 2 with the same length: its frame statistics differ
    stat = next(c for c in full.column_names if c.startswith("stats/") and c.endswith("/mean"))
    values = full.column(stat).to_pylist()
    values[2] = [v + 1.0 for v in values[2]] if isinstance(values[2], list) else values[2] + 1.0
    index = full.schema.get_field_index(stat)
    pq.write_table(
        full.set_column(index, stat, pa.array(values, full.schema.field(stat).type)),
        root / EPISODES_META,
    )
    after = open_lerobot(root, "x").signatures()
    assert [i for i in after if after[i] != before[i]] == [2]


def _symlink_out(path: Path, elsewhere: Path) -> Path:
    elsewhere.mkdir(parents=True, exist_ok=True)
    target = elsewhere / path.name
    shutil.move(path, target)
    path.symlink_to(target)
    return target


def test_v21_symlink_out_of_the_root_fails_that_episode_only(real_copy, tmp_path: Path) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    video = root / "videos/chunk-000/observation.images.cam_high/episode_000003.mp4"
    target = _symlink_out(video, tmp_path / "elsewhere")
    inside = root / "data/chunk-000/episode_000005.parquet"  # a symlink inside the root is fine
    shutil.move(inside, root / "data/moved.parquet")
    inside.symlink_to(root / "data/moved.parquet")
    episodes = open_lerobot(root, "x").episodes()
    assert len(episodes) == 8
    with pytest.raises(EpisodeError) as err:
        build_manifest(episodes[3])
    assert str(err.value) == (
        f"{video}: episode 3: is a symlink to {target}, outside the dataset root {root}"
    )
    assert "template" not in str(err.value)
    assert build_manifest(episodes[4])[0]["tech_length"] == 410
    assert read_frames(episodes[5]).num_rows == 445


def test_v3_symlink_out_of_the_root_fails_its_episodes_only(
    multi_file_root: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(multi_file_root, tmp_path / "m"))
    videos = sorted((root / "videos").rglob("*.mp4"))
    target = _symlink_out(videos[1], tmp_path / "elsewhere")  # file-001: episodes 2 and 3
    episodes = open_lerobot(root, "m").episodes()
    for ep in (2, 3):
        with pytest.raises(
            EpisodeError, match="is a symlink to .*, outside the dataset root"
        ) as err:
            build_manifest(episodes[ep])
        assert str(err.value).startswith(f"{videos[1]}: episode {ep}: is a symlink to {target}")
    assert [len(build_manifest(episodes[ep])) for ep in (0, 1)] == [1, 1]


def test_episode_changes_names_new_re_recorded_and_vanished_episodes() -> None:
    from enrich_assets.datasets.episode import EpisodeRef
    from enrich_assets.datasets.scan import episode_changes

    def ref(index: int, signature: str) -> EpisodeRef:
        rows = ParquetRows(Path("/d/x.parquet"), None, index, 1)
        return EpisodeRef("d", index, 1, 10.0, "t", rows, signature=signature)

    known = {"d:ep000000", "d:ep000001", "d:ep000005", "other:ep000009"}
    seen = {"d:ep000000": "a", "d:ep000001": "b"}
    change = episode_changes("d", [ref(0, "a"), ref(1, "B"), ref(2, "c")], known, seen)
    assert change.new == ["d:ep000002"]
    assert change.re_recorded == ["d:ep000001"]
    assert change.gone == ["d:ep000005"]
    assert change.signatures == {"d:ep000000": "a", "d:ep000001": "B", "d:ep000002": "c"}
