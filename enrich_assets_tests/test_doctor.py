"""`enrich-assets doctor` on copies of the real G1 fixtures, each with one planted oddity,
and the layout override that lets the reader (and the pipeline) use a damaged dataset as is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from enrich_assets.app.cli import main
from enrich_assets.datasets.doctor import diagnose
from enrich_assets.datasets.episode import read_frames
from enrich_assets.datasets.errors import DatasetError
from enrich_assets.datasets.lerobot.reader import open_lerobot
from enrich_assets_tests.conftest import real_fixture

CAMERA = "observation.images.cam_high"
RENAMES = {CAMERA: "image", "observation.state": "state", "action": "actions"}
V3_VIDEO_PATH = "video/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
FIXTURES = ["g1_v30", "g1_v21"]


def _kinds(diagnosis) -> dict[str, tuple[int, ...]]:  # noqa: ANN001
    return {f.kind: f.episodes for f in diagnosis.findings}


def _doctor(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(["doctor", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def _edit_info(root: Path, change) -> None:  # noqa: ANN001
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info, indent=4))


def _rewrite_parquet(path: Path, change) -> None:  # noqa: ANN001
    pq.write_table(change(pq.read_table(path)), path)


def _rename_features(root: Path) -> None:
    """What another tool's export looks like: `image`, `state`, `actions` everywhere."""

    def rename(name: str) -> str:
        for old, new in RENAMES.items():
            name = name.replace(f"/{old}/", f"/{new}/") if "/" in name else name
        return RENAMES.get(name, name)

    _edit_info(root, lambda i: i.update(features={rename(k): v for k, v in i["features"].items()}))
    for f in [*root.glob("data/*/*.parquet"), *root.glob("meta/episodes/*/*.parquet")]:
        _rewrite_parquet(f, lambda t: t.rename_columns([rename(c) for c in t.column_names]))
    for folder in list(root.rglob(CAMERA)):
        folder.rename(folder.with_name("image"))


def _shift_timestamps(root: Path, episode: int, timestamps) -> None:  # noqa: ANN001
    """Rewrite one episode's timestamps as `timestamps(frame_index)`."""
    for f in root.glob("data/*/*.parquet"):

        def change(t: pa.Table) -> pa.Table:
            mine = pc.equal(t["episode_index"], episode).to_numpy(zero_copy_only=False)
            frame = t["frame_index"].to_numpy()
            ts = np.where(mine, timestamps(frame), t["timestamp"].to_numpy())
            column = t.column_names.index("timestamp")
            return t.set_column(column, "timestamp", pa.array(ts.astype(np.float32)))

        _rewrite_parquet(f, change)


@pytest.mark.parametrize("name", FIXTURES)
def test_clean_fixture_is_usable(capsys, real_copy, name: str) -> None:  # noqa: ANN001
    root = real_copy(name)
    code, text = _doctor(capsys, str(root))
    assert code == 0, text
    assert "no problems found" in text and "stream av1 640x480" in text
    assert {"g1_v30": "LeRobot v3.0", "g1_v21": "LeRobot v2.1"}[name] in text


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize(
    ("folder", "moved", "kind"), [("videos", "video", "video"), ("data", "frames", "data")]
)
def test_renamed_folder_is_named_and_unusable(capsys, real_copy, name, folder, moved, kind) -> None:  # noqa: ANN001
    root = real_copy(name)
    (root / folder).rename(root / moved)
    code, text = _doctor(capsys, str(root))
    assert code == 2, text
    assert f"[{kind}-folder] 8 of 8 episodes" in text and f"under {moved}/" in text
    assert "Traceback" not in text
    layout = text.split("holding:\n")[1].splitlines()[0].strip()
    assert layout.startswith(f'{kind}_path: "{moved}/')
    (root / "enrich-layout.yaml").write_text(layout + "\n")  # the fix it suggests, verbatim
    code, text = _doctor(capsys, str(root))
    assert code == 0, text
    assert "no problems found" in text


def test_layout_given_with_option(capsys, real_copy, tmp_path: Path) -> None:  # noqa: ANN001
    root = real_copy("g1_v30")
    (root / "videos").rename(root / "video")
    layout = tmp_path / "mine.yaml"
    layout.write_text(f'video_path: "{V3_VIDEO_PATH}"\n')
    assert _doctor(capsys, str(root), "--layout", str(layout))[0] == 0
    assert _doctor(capsys, str(root))[0] == 2  # not beside the dataset: not used


@pytest.mark.parametrize("name", FIXTURES)
def test_wrong_codec_label_is_a_warning_and_the_override_silences_it(real_copy, name: str) -> None:  # noqa: ANN001
    root = real_copy(name)
    _edit_info(root, lambda i: i["features"][CAMERA]["info"].update({"video.codec": "h264"}))
    diagnosis = diagnose(str(root))
    codec = next(f for f in diagnosis.findings if f.kind == "codec-label")
    assert "'h264'" in codec.problem and "'av1'" in codec.problem
    assert diagnosis.exit_code() == 0  # we decode what the stream is
    (root / "enrich-layout.yaml").write_text(f"codecs:\n  {CAMERA}: av1\n")
    assert "codec-label" not in _kinds(diagnose(str(root)))


@pytest.mark.parametrize("name", FIXTURES)
def test_renamed_features_and_their_mapping(real_copy, name: str) -> None:  # noqa: ANN001
    original = open_lerobot(real_fixture(name), "o").episodes()[1]
    root = real_copy(name)
    _rename_features(root)
    diagnosis = diagnose(str(root))
    names = next(f for f in diagnosis.findings if f.kind == "feature-names")
    named = names.problem.split("names features ")[1].split(", not as")[0]
    assert set(named.split(", ")) == {"image", "state", "actions"}
    for line in ("image: observation.images.image", "state: observation.state", "actions: action"):
        assert line in names.fix
    assert diagnosis.exit_code() == 0
    mapping = {"image": CAMERA, "state": "observation.state", "actions": "action"}
    (root / "enrich-layout.yaml").write_text(
        "features:\n" + "".join(f"  {k}: {v}\n" for k, v in mapping.items())
    )
    assert diagnose(str(root)).findings == []
    ref = open_lerobot(root, "r").episodes()[1]
    assert ref.cameras == [CAMERA] and ref.frames[CAMERA].path.is_file()
    columns = ("timestamp", "observation.state", "action")
    assert read_frames(ref, columns).equals(read_frames(original, columns))


def test_missing_episode_files(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    (root / "data/chunk-000/episode_000003.parquet").unlink()
    (root / f"videos/chunk-000/{CAMERA}/episode_000006.mp4").unlink()
    diagnosis = diagnose(str(root))
    assert _kinds(diagnosis) == {"missing-data-file": (3,), "missing-video-file": (6,)}
    assert "episode_000003.parquet is missing" in diagnosis.findings[0].problem
    assert diagnosis.exit_code() == 1


def test_missing_shared_data_file_loses_every_episode(real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v30")
    (root / "data/chunk-000/file-000.parquet").unlink()
    diagnosis = diagnose(str(root))
    assert _kinds(diagnosis) == {"missing-data-file": tuple(range(8))}
    assert diagnosis.exit_code() == 2


@pytest.mark.parametrize("name", FIXTURES)
def test_off_grid_timestamps(real_copy, name: str) -> None:  # noqa: ANN001
    root = real_copy(name)
    _shift_timestamps(root, 5, lambda frame: frame / 25.0)  # written at the wrong fps
    _shift_timestamps(root, 2, lambda frame: frame / 30.0 + 0.003)  # jitter within a frame
    diagnosis = diagnose(str(root))
    found = {
        (f.severity, f.episodes) for f in diagnosis.findings if f.kind == "off-grid-timestamps"
    }
    assert found == {("error", (5,)), ("warning", (2,))}
    assert diagnosis.exit_code() == 1


def test_unknown_layout_key_is_one_line(capsys, real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v30")
    (root / "enrich-layout.yaml").write_text("videos_dir: video\n")
    code, text = _doctor(capsys, str(root))
    assert code == 2
    assert text.strip().splitlines() == [
        f"error: {root / 'enrich-layout.yaml'}:videos_dir: unknown key "
        "(known: video_path, data_path, features, codecs)"
    ]
    with pytest.raises(DatasetError, match="videos_dir"):
        open_lerobot(root, "x")  # the pipeline refuses it the same way


def test_not_a_dataset(capsys, tmp_path: Path) -> None:  # noqa: ANN001
    code, text = _doctor(capsys, str(tmp_path), "--json")
    assert code == 2
    assert json.loads(text)["findings"][0]["kind"] == "unknown-format"
    code, text = _doctor(capsys, str(tmp_path / "absent"))
    assert code == 2 and "does not exist" in text


def test_materialize_through_the_override(settings, real_copy) -> None:  # noqa: ANN001
    """End to end: the renamed-videos dataset plus its layout file goes through the graph."""
    from enrich_assets.app.run_driver import materialize_dataset
    from enrich_assets.definitions import build_definitions
    from enrich_assets.store.catalog import Catalog

    root = real_copy("g1_v30")
    (root / "videos").rename(root / "video")
    (root / "enrich-layout.yaml").write_text(f'video_path: "{V3_VIDEO_PATH}"\n')
    select = "key:episode_manifest or key:keyframes"
    report = materialize_dataset(build_definitions(), settings, root, select, only=[0, 1])
    assert report.ok, report.failures
    assert report.summary["keyframes"]["ok"] == 2
    manifest = Catalog(settings.catalog_dir, settings.duckdb_path).read("episode_manifest")
    assert manifest.height == 2
    assert all("/video/" in p for p in manifest["tech_video_path"].to_list())


def test_malformed_info_json_is_fatal(capsys, real_copy) -> None:  # noqa: ANN001
    root = real_copy("g1_v21")
    (root / "meta/info.json").write_text('{"fps": 30,')
    code, text = _doctor(capsys, str(root))
    assert code == 2 and "[info-json] dataset" in text and "malformed JSON" in text
    assert "Traceback" not in text
