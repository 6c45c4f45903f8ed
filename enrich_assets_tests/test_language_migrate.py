"""`enrich-assets migrate-language`: a real G1 copy staged and written with the former VQA
shapes (normalised, `type` field) comes out in lerobot's, in pixels; a second run changes
nothing; a damaged data file is named and the others are still migrated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from enrich_assets.app.cli import main
from enrich_assets.datasets.lerobot import language_staging as staging
from enrich_assets.datasets.lerobot.language_format import LanguageRow
from enrich_assets.datasets.lerobot.language_writer import write_from_staging
from enrich_assets.enrich.language.validator import blocking_errors
from enrich_assets.enrich.language.vqa_answer import bbox_answer_boxes, vqa_answer_shape
from enrich_assets_tests.test_language_writer import DATA, SOURCE, stage_all

CAM = "observation.images.cam_high"
W, H = 640, 480  # the fixture's frames as decoded
OLD = [
    {"type": "bbox", "label": "bottle", "box": [0.25, 0.5, 0.75, 1.0]},
    {"type": "keypoint", "label": "cap", "point": [0.5, 0.25]},
    {"type": "count", "label": "bottle", "count": 1},
    {"type": "attribute", "label": "bottle", "attribute": "color", "value": "yellow"},
    {"type": "spatial", "subject": "bottle", "relation": "on", "object": "table"},
]
NEW = [
    {"detections": [{"label": "bottle", "bbox_format": "xyxy", "bbox": [160, 240, 480, 480]}]},
    {"label": "cap", "point_format": "xy", "point": [320, 120]},
    {"label": "bottle", "count": 1},
    {"label": "bottle", "attribute": "color", "value": "yellow"},
    {"subject": "bottle", "relation": "on", "object": "table"},
]


def old_shapes(root: Path, episodes) -> None:
    """Re-stage every VQA answer in the former shapes, cycling through the five."""
    n = 0
    for ep in episodes:
        rows = []
        for row in staging.read_staged(root, ep, "vqa"):
            if row.role == "assistant":
                row = LanguageRow(**{**row.to_dict(), "content": json.dumps(OLD[n % 5])})
                n += 1
            rows.append(row)
        staging.write_staged(root, ep, "vqa", rows)


def vqa_answers(root: Path, episodes) -> list[dict]:
    rows = [r for ep in episodes for r in staging.read_staged(root, ep, "vqa")]
    return [json.loads(r.content) for r in rows if r.role == "assistant"]


def column_answers(data_file: Path) -> list[dict]:
    events = pq.read_table(data_file, columns=["language_events"]).column(0).to_pylist()
    return [
        json.loads(r["content"])
        for frame in events
        for r in frame
        if r["style"] == "vqa" and r["role"] == "assistant"
    ]


@pytest.fixture
def old_dataset(tmp_path) -> tuple[Path, list[int]]:
    root = tmp_path / "g1"
    shutil.copytree(SOURCE, root)
    episodes = list(stage_all(root))
    old_shapes(root, episodes)
    # what the former version wrote: its own validator accepted these shapes
    write_from_staging(root, root / DATA, lambda *_: [])
    assert blocking_errors(staging.read_episode(root, episodes[0]), [0.0], [CAM])  # old: refused
    return root, episodes


def test_migrates_staging_and_columns_to_lerobots_pixel_shapes_once(old_dataset, capsys):
    root, episodes = old_dataset
    before = vqa_answers(root, episodes)
    assert len(before) > 10 and all("type" in a for a in before)

    assert main(["migrate-language", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{len(episodes)} staging file(s) and 1 data file(s) rewritten" in out
    after = vqa_answers(root, episodes)
    assert after == [NEW[i % 5] for i in range(len(before))]
    assert all(vqa_answer_shape(a) for a in after)
    assert bbox_answer_boxes(after[0])[0].bbox == (160.0, 240.0, 480.0, 480.0)
    assert column_answers(root / DATA) == after  # events column follows frame order = staging's
    table = pq.read_table(root / DATA)

    # the migrated staging now passes the writer's gate, and writes the same columns
    write_from_staging(root, root / DATA, blocking_errors)
    rewritten = pq.read_table(root / DATA)
    assert rewritten.column("language_events").equals(table.column("language_events"))

    # idempotent: a second run rewrites nothing, byte for byte
    files = [root / DATA, *sorted((root / ".annotate_staging").rglob("*.jsonl"))]
    snapshot = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    assert main(["migrate-language", str(root)]) == 0
    assert "0 staging file(s) and 0 data file(s) rewritten" in capsys.readouterr().out
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == snapshot


def test_a_damaged_data_file_is_named_and_the_rest_migrated(old_dataset, capsys):
    root, episodes = old_dataset
    bad = root / "data" / "chunk-000" / "file-001.parquet"
    bad.write_bytes(b"PAR1 not really")
    assert main(["migrate-language", str(root)]) == 1
    out = capsys.readouterr().out
    assert "NOT MIGRATED: data/chunk-000/file-001.parquet" in out and "unreadable parquet" in out
    assert bad.read_bytes() == b"PAR1 not really"
    assert all(vqa_answer_shape(a) for a in column_answers(root / DATA))
    assert all(vqa_answer_shape(a) for a in vqa_answers(root, episodes))
