"""`doctor` on the formats that have no doctor of their own reads through their readers:
HDF5 files and SQL tables, clean and with one damaged episode."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest

from enrich_assets.app.cli import main
from enrich_assets.datasets.doctor import diagnose
from enrich_assets.datasets.sql.source import with_options
from enrich_assets_tests import hdf5_fixtures as fx
from enrich_assets_tests.sql_tables import insert_rows, synthetic_rows


def test_hdf5_clean_and_truncated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = fx.write_robomimic(tmp_path / "lift.hdf5", fx.sample_episodes(3))
    clean = diagnose(str(path))
    assert clean.format == "hdf5" and clean.exit_code() == 0
    assert clean.facts["episodes"] == "3" and "raw 64x48" in clean.facts["cameras"]
    with h5py.File(path, "a") as f:  # demo_1's camera truncated to 5 frames
        frames = f["data/demo_1/obs/agentview_image"][:5]
        del f["data/demo_1/obs/agentview_image"]
        f["data/demo_1/obs/agentview_image"] = frames
    assert main(["doctor", str(path)]) == 1
    out = capsys.readouterr().out
    assert "ERROR [episode] 1 of 3 episodes (1)" in out and "holds 5 frames" in out


def test_sql_table_with_a_corrupt_row(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'clips.db'}"
    rows = synthetic_rows(episodes=3, frames=4)
    rows[7] = (*rows[7][:4], b"junk", rows[7][5])  # the last frame of episode 1
    insert_rows(url, rows, create=True)
    location = with_options(url, table="clips")
    assert main(["doctor", location]) == 1
    out = capsys.readouterr().out
    assert "sql" in out.splitlines()[0] and "id=7: corrupt image" in out
    assert main(["doctor", with_options(url, table="nope")]) == 2
    assert "has no table 'nope'" in capsys.readouterr().out
