"""lerobot's own view of a dataset this project enriched: run by lerobot's Python (its own
venv, see scripts/compat.sh), never by ours.

1. lerobot's `StagingValidator` over `<root>/.annotate_staging`, with the dataset's cameras:
   no error, every episode checked, VQA rows present.
2. `LeRobotDataset(..., video_backend="pyav")` loads the written dataset; the language
   columns come back; every VQA answer on a loaded frame is one of lerobot's shapes and its
   boxes and points lie on that frame as lerobot decodes it.

Usage: python check_lerobot.py DATASET_ROOT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lerobot.annotations.steerable_pipeline.reader import iter_episodes
from lerobot.annotations.steerable_pipeline.validator import (
    StagingValidator,
    classify_vqa_answer,
)
from lerobot.datasets.lerobot_dataset import LeRobotDataset


def fail(message: str) -> None:
    print(f"FAIL: {message}")
    sys.exit(1)


def coordinates(answer: dict) -> list[tuple[float, float]]:
    if "detections" in answer:
        return [tuple(v) for d in answer["detections"] for v in (d["bbox"][:2], d["bbox"][2:])]
    return [tuple(answer["point"])] if "point" in answer else []


def check_staging(root: Path, cameras: tuple[str, ...]) -> int:
    records = list(iter_episodes(root))
    staging = root / ".annotate_staging"
    report = StagingValidator(dataset_camera_keys=cameras).validate(records, staging)
    print(f"lerobot StagingValidator: {report.summary()}")
    for error in report.errors[:10]:
        print(f"  ERROR {error[:300]}")
    if not report.ok:
        fail(f"lerobot's validator found {len(report.errors)} errors")
    if report.episodes_checked != len(records) or not records:
        fail(f"checked {report.episodes_checked} of {len(records)} episodes")
    vqa = list(staging.glob("episode_*/vqa.jsonl"))
    rows = [json.loads(line) for path in vqa for line in path.read_text().splitlines() if line]
    if len(vqa) != len(records) or not rows:
        fail(f"expected VQA staged for {len(records)} episodes, found {len(vqa)} files")
    return len(rows)


def check_loading(root: Path, cameras: tuple[str, ...]) -> int:
    ds = LeRobotDataset("local/enriched", root=root, video_backend="pyav")
    if not ds[0]["language_persistent"]:
        fail("frame 0 has no language_persistent rows")
    sizes: dict[str, tuple[int, int]] = {}  # camera -> (w, h) as lerobot decodes its frames
    checked = 0
    for i, events in enumerate(ds.hf_dataset["language_events"]):
        for event in events:
            if event["style"] != "vqa" or event["role"] != "assistant":
                continue
            answer = json.loads(event["content"])
            if classify_vqa_answer(answer) is None:
                fail(f"frame {i}: answer {answer} fits no lerobot shape")
            camera = event["camera"]
            if camera not in sizes:
                _, h, w = ds[i][camera].shape  # C, H, W
                sizes[camera] = (w, h)
            w, h = sizes[camera]
            for x, y in coordinates(answer):
                if not (0 <= x <= w and 0 <= y <= h):
                    fail(f"frame {i}: ({x}, {y}) is off the {w}x{h} {camera} frame: {answer}")
            checked += 1
    if not checked:
        fail("no VQA answer found in the written language_events column")
    print(
        f"LeRobotDataset (pyav): {ds.num_episodes} episodes, {ds.num_frames} frames; "
        f"{checked} VQA answers fit lerobot's shapes and lie on the decoded frames {sizes}"
    )
    return checked


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    info = json.loads((root / "meta" / "info.json").read_text())
    cameras = tuple(k for k, v in info["features"].items() if v.get("dtype") == "video")
    check_staging(root, cameras)
    check_loading(root, cameras)
    print("lerobot compatibility: ok")


if __name__ == "__main__":
    main()
