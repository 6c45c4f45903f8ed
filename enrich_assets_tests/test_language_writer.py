"""The LeRobot language writer on the real G1 v3.0 fixture (8 episodes in one data file)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrich_assets.datasets.lerobot import language_staging as staging
from enrich_assets.datasets.lerobot.language_format import SAY_TOOL_SCHEMA, LanguageRow
from enrich_assets.datasets.lerobot.language_writer import (
    EVENTS_TYPE,
    PERSISTENT_TYPE,
    DamagedShardError,
    LanguageValidationError,
    write_from_staging,
    write_language_columns,
)
from enrich_assets.enrich.language.interjections import run_interjections
from enrich_assets.enrich.language.module import EpisodeInput
from enrich_assets.enrich.language.plan import run_plan
from enrich_assets.enrich.language.settings import LanguageSettings
from enrich_assets.enrich.language.validator import blocking_errors
from enrich_assets.enrich.language.vqa import run_vqa
from enrich_assets_tests.language_scripted_vlm import ScriptedVLM

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "g1_v30"
DATA = Path("data/chunk-000/file-000.parquet")
CAM = "observation.images.cam_high"
OTHER_TOOL = {"type": "function", "function": {"name": "wave", "parameters": {}}}


def fetch(camera, positions):
    return [np.zeros((56, 56, 3), np.uint8) for _ in positions]


@pytest.fixture
def dataset(tmp_path) -> Path:
    if not SOURCE.is_dir():
        pytest.fail(f"real fixture missing at {SOURCE}")
    root = tmp_path / "g1"
    shutil.copytree(SOURCE, root)
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["tools"] = [OTHER_TOOL]
    info_path.write_text(json.dumps(info, indent=4))
    return root


def stage_all(root: Path) -> dict[int, np.ndarray]:
    """Run the three modules on every episode of the fixture and stage their rows."""
    table = pq.read_table(root / DATA, columns=["episode_index", "timestamp"])
    episodes = table.column("episode_index").to_numpy()
    timestamps = table.column("timestamp").to_numpy()
    settings, client = LanguageSettings(task_aug_count=3, vqa_hz=0.5), ScriptedVLM()
    by_episode = {}
    for ep in np.unique(episodes):
        ts = timestamps[episodes == ep]
        episode = EpisodeInput(int(ep), ts, fetch, [CAM], "Pick up the yellow bottle.", settings)
        plan = run_plan(episode, client)
        planned = replace(episode, task=plan.task, subtasks=plan.subtasks)
        inter = run_interjections(planned, client)
        vqa = run_vqa(planned, client)
        for module, out in (("plan", plan), ("interjections", inter), ("vqa", vqa)):
            staging.write_staged(root, int(ep), module, out.rows)
        by_episode[int(ep)] = ts
    return by_episode


def test_writes_both_columns_and_keeps_everything_else(dataset):
    original = pq.read_table(dataset / DATA)
    original_meta = pq.ParquetFile(dataset / DATA).schema_arrow.metadata
    by_episode = stage_all(dataset)
    staged = {ep: staging.read_episode(dataset, ep) for ep in by_episode}

    summary = write_language_columns(dataset, dataset / DATA, staged, blocking_errors)
    assert summary.episodes == list(range(8)) and summary.event_rows > 0

    written = pq.ParquetFile(dataset / DATA)
    table = written.read()
    for name in original.column_names:
        assert table.column(name).equals(original.column(name)), name
    assert table.schema.field("language_persistent").type == PERSISTENT_TYPE
    assert table.schema.field("language_events").type == EVENTS_TYPE
    assert written.schema_arrow.metadata == original_meta
    assert written.metadata.num_row_groups == 8
    assert sorted(p.name for p in (dataset / DATA).parent.iterdir()) == ["file-000.parquet"]
    row_group_episodes = [
        set(written.read_row_group(i, columns=["episode_index"]).column(0).to_pylist())
        for i in range(8)
    ]
    assert row_group_episodes == [{i} for i in range(8)]

    episodes = table.column("episode_index").to_numpy()
    persistent = table.column("language_persistent").to_pylist()
    events = table.column("language_events").to_pylist()
    frame_ts = table.column("timestamp").to_pylist()
    for ep, ts in by_episode.items():
        rows = np.flatnonzero(episodes == ep)
        staged_rows = [r for rs in staged[ep].values() for r in rs]
        want_persistent = {
            r.content for r in staged_rows if r.style in ("subtask", "plan", "memory", "task_aug")
        }
        # the same persistent slice on every frame of the episode
        assert all(persistent[i] == persistent[rows[0]] for i in rows)
        assert {r["content"] for r in persistent[rows[0]]} == want_persistent
        # events only on the frame whose timestamp is theirs, all of them placed
        event_times = sorted(
            r.timestamp for r in staged_rows if r.style in (None, "interjection", "vqa")
        )
        placed = sorted(frame_ts[i] for i in rows for _ in events[i])
        assert placed == event_times
        assert float(ts[0]) in {r["timestamp"] for r in persistent[rows[0]]}

    speech = [r for ev in events for r in ev if r["style"] is None]
    # pyarrow gives JSON items as text; lerobot (HF datasets Json) decodes them
    assert speech and [json.loads(c) for c in speech[0]["tool_calls"]] == [
        {"type": "function", "function": {"name": "say", "arguments": {"text": "Lifting it."}}}
    ]
    info = json.loads((dataset / "meta" / "info.json").read_text())
    for column in ("language_persistent", "language_events"):
        assert info["features"][column] == {"dtype": "language", "shape": [1], "names": None}
    assert info["tools"] == [OTHER_TOOL, SAY_TOOL_SCHEMA]

    # running again (from the staging tree) replaces the columns, keeps one say tool
    write_from_staging(dataset, dataset / DATA, blocking_errors)
    again = pq.read_table(dataset / DATA)
    assert again.column_names == table.column_names and again.equals(table)
    assert json.loads((dataset / "meta" / "info.json").read_text())["tools"] == info["tools"]


def test_a_validator_error_writes_nothing(dataset):
    stage_all(dataset)
    staged = {ep: staging.read_episode(dataset, ep) for ep in range(8)}
    staged[3]["vqa"].append(LanguageRow("user", "Where?", "vqa", 0.5, "observation.images.nope"))
    before = (dataset / DATA).read_bytes()
    info_before = (dataset / "meta" / "info.json").read_bytes()
    with pytest.raises(LanguageValidationError, match="episode 3: language_camera_known"):
        write_language_columns(dataset, dataset / DATA, staged, blocking_errors)
    assert (dataset / DATA).read_bytes() == before
    assert (dataset / "meta" / "info.json").read_bytes() == info_before
    assert sorted(p.name for p in (dataset / DATA).parent.iterdir() if "tmp" in p.name) == []


def test_every_episode_of_the_file_must_be_staged(dataset):
    stage_all(dataset)
    staged = {ep: staging.read_episode(dataset, ep) for ep in range(7)}
    with pytest.raises(ValueError, match=r"no staged language rows for episodes \[7\]"):
        write_language_columns(dataset, dataset / DATA, staged, blocking_errors)


def test_persistent_timestamps_are_float32_frame_values(dataset):
    by_episode = stage_all(dataset)
    staged = {ep: staging.read_episode(dataset, ep) for ep in by_episode}
    write_language_columns(dataset, dataset / DATA, staged, blocking_errors)
    table = pq.read_table(dataset / DATA)
    stamps = pa.concat_arrays(
        [table.column("language_persistent").combine_chunks().flatten().field("timestamp")]
    )
    frame_ts = set(table.column("timestamp").to_numpy().tolist())
    assert stamps.type == pa.float32() and set(stamps.to_numpy().tolist()) <= frame_ts


# --- one damaged shard fails alone ---


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_damaged_data_file_is_named_with_its_cause(dataset):
    stage_all(dataset)
    _truncate(dataset / DATA)
    with pytest.raises(DamagedShardError) as err:
        write_from_staging(dataset, dataset / DATA, blocking_errors)
    message = str(err.value)
    assert message.startswith(f"{dataset / DATA}: unreadable parquet (") and "\n" not in message


def test_writeback_writes_every_shard_but_the_damaged_one(tmp_path: Path):
    import dagster as dg

    from enrich_assets.datasets.lerobot.v3_writer import FileLimits
    from enrich_assets.datasets.sample.generator import write_sample_dataset
    from enrich_assets.defs.resources import PipelineResource
    from enrich_assets.defs.writeback import lerobot_language_writeback
    from enrich_assets.store.registry import DatasetRegistry

    root = write_sample_dataset(
        tmp_path / "shards",
        episodes=6,
        width=32,
        height=32,
        cameras=1,
        frames_per_episode=(20, 24),
        limits=FileLimits(episodes_per_file=2),
    )
    files = sorted((root / "data").rglob("*.parquet"))
    assert len(files) == 3
    camera = next(
        k
        for k, f in json.loads((root / "meta/info.json").read_text())["features"].items()
        if f.get("dtype") == "video"
    )
    settings, client = LanguageSettings(task_aug_count=3, vqa_hz=0.5), ScriptedVLM()
    for f in files:
        table = pq.read_table(f, columns=["episode_index", "timestamp"])
        eps, stamps = table.column(0).to_numpy(), table.column(1).to_numpy()
        for ep in np.unique(eps):
            ts = stamps[eps == ep]
            episode = EpisodeInput(int(ep), ts, fetch, [camera], "Pick up the cube.", settings)
            plan = run_plan(episode, client)
            staging.write_staged(root, int(ep), "plan", plan.rows)
    _truncate(files[1])
    data_dir = tmp_path / "data"
    registry = PipelineResource(data_dir=str(data_dir)).registry
    assert isinstance(registry, DatasetRegistry)
    dataset_id = registry.register(root)

    result = dg.materialize(
        [lerobot_language_writeback],
        resources={"pipeline": PipelineResource(data_dir=str(data_dir))},
        raise_on_error=False,
    )
    assert not result.success
    for f in (files[0], files[2]):  # the others got their columns
        assert "language_persistent" in pq.read_schema(f).names, f
    failure = next(
        e for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    ).step_failure_data.user_failure_data
    assert f"{dataset_id}:data/chunk-000/file-001.parquet" in failure.description
    assert "unreadable parquet" in failure.description
    assert "language_persistent" in json.loads((root / "meta/info.json").read_text())["features"]
