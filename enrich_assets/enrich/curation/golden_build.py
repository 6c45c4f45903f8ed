"""Cut the golden set from the sample dataset's ground truth.

The generator knows every object, box and the moment of grasp, so the references are
exact. Golden keyframes are frames the pipeline's keyframe policy picks (so detections and
captions exist for them), from episodes without planted defects, interior frames only,
cameras alternating. Regenerate the committed copy with
`python -m enrich_assets.enrich.curation.golden_build --out data/golden`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.datasets.open import open_dataset
from enrich_assets.datasets.sample.generator import (
    DEMO_EPISODES,
    DEMO_SEED,
    PLACE_WORDS,
    PLACES,
    write_sample_dataset,
)
from enrich_assets.enrich.curation.golden_set import (
    GOLDEN_DIR,
    Boundary,
    GoldenEpisode,
    GoldenItem,
    GoldenSet,
    GoldenSetError,
    ReferenceBox,
    ReferenceObject,
    read_truth,
    truth_params,
    write_golden_set,
)
from enrich_assets.enrich.episode.keyframes import (
    Keyframe,
    KeyframePolicy,
    extract_keyframes,
    select_by_count,
)
from enrich_assets.enrich.vision.detections import load_vocabulary
from enrich_assets.infra.schema import load_yaml, pipeline_config

GRIPPER = "gripper"


def build_golden_set(
    dataset_root: Path,
    config: Mapping[str, Any] | None = None,
    policy: KeyframePolicy | None = None,
) -> tuple[GoldenSet, dict[str, np.ndarray]]:
    """The golden set of a sample dataset, and its frames by image path.

    `config` is schemas/golden.yaml `build`, `policy` the pipeline's keyframe policy
    (schemas/pipeline.yaml); both default to the files.
    """
    config = dict(config or load_yaml("golden.yaml")["build"])
    policy = policy or KeyframePolicy(**pipeline_config("keyframes"))
    _check_labels(config)
    truth = read_truth(dataset_root)
    refs = {r.episode_index: r for r in open_dataset(Path(dataset_root), "golden").episodes()}
    skipped = defect_episodes(truth)
    episodes, items, images = [], [], {}
    for truth_episode in truth["episodes"]:
        index = truth_episode["episode_index"]
        if index in skipped:
            continue
        ref = refs[index]
        episodes.append(golden_episode(truth_episode, _timestamps(ref)))
        chosen = choose_keyframes(
            extract_keyframes(ref, policy),
            truth["cameras"],
            truth_episode["length"],
            index,
            config["keyframes_per_episode"],
        )
        for keyframe in chosen:
            item = golden_item(truth_episode, keyframe, config)
            items.append(item)
            images[item.image] = keyframe.image
    build = {**config, "keyframe_policy": asdict(policy)}
    return GoldenSet(truth_params(truth), build, tuple(episodes), tuple(items)), images


def defect_episodes(truth: Mapping[str, Any]) -> set[int]:
    """Episodes with a planted defect (and the re-recorded copy): not what a golden set shows."""
    defects = truth.get("defects", {})
    return {d["episode_index"] for d in defects.values()}


def choose_keyframes(
    keyframes: Sequence[Keyframe],
    cameras: Sequence[str],
    length: int,
    episode_index: int,
    per_episode: int,
) -> list[Keyframe]:
    """`per_episode` interior keyframes spread over the episode, the camera alternating."""
    chosen = []
    for c, camera in enumerate(cameras):
        interior = [k for k in keyframes if k.camera == camera and 0 < k.frame_index < length - 1]
        for slot, position in enumerate(select_by_count(len(interior), per_episode)):
            if (episode_index + slot) % len(cameras) == c:
                chosen.append(interior[position])
    return sorted(chosen, key=lambda k: (k.frame_index, k.camera))


def golden_episode(
    truth_episode: Mapping[str, Any], timestamps: Mapping[int, float]
) -> GoldenEpisode:
    boundaries = tuple(
        Boundary(s["name"], s["start_frame"], timestamps[s["start_frame"]])
        for s in truth_episode["subtasks"][1:]
    )
    return GoldenEpisode(
        truth_episode["episode_index"],
        truth_episode["task"],
        truth_episode["length"],
        tuple(o["name"] for o in truth_episode["objects"]),
        boundaries,
    )


def golden_item(
    truth_episode: Mapping[str, Any], keyframe: Keyframe, config: Mapping[str, Any]
) -> GoldenItem:
    t, camera = keyframe.frame_index, keyframe.camera
    boxes = {name: seq[t] for name, seq in truth_episode["boxes"][camera].items()}
    visible = visible_fractions(boxes, draw_order(truth_episode, t), keyframe.image.shape[:2])
    shapes = {o["name"]: o["shape"] for o in truth_episode["objects"]}
    references = [
        ReferenceBox(name, tuple(config["labels"][shapes.get(name, GRIPPER)]), _edges(box))
        for name, box in boxes.items()
        if box is not None
        and visible[name] >= config["min_visible"]
        and _area(box) >= config["min_box_pixels"]
    ]
    in_frame = [o for o in truth_episode["objects"] if boxes[o["name"]] is not None]
    objects = tuple(
        ReferenceObject(
            o["name"], tuple(f"{o['colour']} {w}" for w in config["mentions"][o["shape"]])
        )
        for o in in_frame
    )
    episode = truth_episode["episode_index"]
    return GoldenItem(
        episode_index=episode,
        frame_index=t,
        timestamp=keyframe.timestamp,
        camera=camera,
        image=f"frames/episode_{episode:03d}_frame_{t:04d}_{camera}.png",
        subtask=subtask_at(truth_episode, t),
        caption=reference_caption(truth_episode, t, [o["name"] for o in in_frame]),
        objects=objects,
        detections=tuple(sorted(references, key=lambda r: r.name)),
    )


def draw_order(truth_episode: Mapping[str, Any], t: int) -> list[str]:
    """Names back to front as the renderer paints them: resting objects far to near, a
    carried one above them, the gripper last."""
    resting = [(position(truth_episode, o, t), o["name"]) for o in truth_episode["objects"]]
    order = sorted((uv is None, uv[1] if uv else 0.0, name) for uv, name in resting)
    return [name for *_, name in order] + [GRIPPER]


def position(
    truth_episode: Mapping[str, Any], obj: Mapping[str, Any], t: int
) -> tuple[float, float] | None:
    """(u, v) on the table at frame t, or None while the gripper carries it."""
    if not obj["is_target"] or t < truth_episode["grasp_frame_index"]:
        return tuple(obj["table_uv"])
    if t < truth_episode["release_frame_index"]:
        return None
    return PLACES[truth_episode["place"]]


def visible_fractions(
    boxes: Mapping[str, Sequence[int] | None], order: Sequence[str], shape: tuple[int, int]
) -> dict[str, float]:
    """Share of each box not covered by the boxes painted after it (a box-level estimate)."""
    covered = np.zeros(shape, bool)
    visible = {}
    for name in reversed(order):
        if boxes.get(name) is None:
            continue
        x0, y0, x1, y1 = boxes[name]
        region = covered[y0 : y1 + 1, x0 : x1 + 1]
        visible[name] = 1.0 - float(region.mean())
        region[...] = True
    return visible


def subtask_at(truth_episode: Mapping[str, Any], t: int) -> str:
    return next(
        s["name"] for s in truth_episode["subtasks"] if s["start_frame"] <= t < s["end_frame"]
    )


def reference_caption(truth_episode: Mapping[str, Any], t: int, in_frame: Sequence[str]) -> str:
    """Two or three sentences: what stands where, what the gripper does, the task."""
    target, place = truth_episode["target"], truth_episode["place"]
    resting = [
        f"{_article(o['name'])} {o['name']} {_where(uv)}"
        for o in truth_episode["objects"]
        if o["name"] in in_frame and (uv := position(truth_episode, o, t)) is not None
    ]
    action = {
        "reach": f"The robot gripper moves towards the {target}.",
        "grasp": f"The robot gripper closes its fingers around the {target}.",
        "carry": f"The robot gripper carries the {target} to the {place} of the table.",
        "place": f"The robot gripper has set the {target} down {PLACE_WORDS[place]} and lets go.",
    }[subtask_at(truth_episode, t)]
    sentences = [f"On the wooden table: {_join(resting)}."] if resting else []
    return " ".join([*sentences, action, f"The task is to {truth_episode['task']}."])


def _timestamps(ref: EpisodeRef) -> dict[int, float]:
    """frame_index -> the source parquet's timestamp."""
    frames = read_frames(ref, ("timestamp",))
    indices, times = frames.column("frame_index"), frames.column("timestamp")
    return dict(zip(indices.to_pylist(), times.to_pylist(), strict=True))


def _where(uv: Sequence[float]) -> str:
    u, v = uv
    side = "left" if u < 0.4 else "right" if u > 0.6 else ""
    depth = "back" if v < 0.45 else "front" if v > 0.6 else ""
    if side and depth:
        return f"at the {depth} {side}"
    return f"on the {side}" if side else f"at the {depth}" if depth else "in the middle"


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _edges(box: Sequence[int]) -> tuple[float, float, float, float]:
    """Inclusive pixel box (the truth's) as pixel edges (the detector's bbox)."""
    x0, y0, x1, y1 = box
    return (float(x0), float(y0), float(x1 + 1), float(y1 + 1))


def _area(box: Sequence[int]) -> int:
    return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


def _check_labels(config: Mapping[str, Any]) -> None:
    vocabulary = set(load_vocabulary())
    unknown = sorted({x for labels in config["labels"].values() for x in labels} - vocabulary)
    if unknown:
        raise GoldenSetError(
            f"schemas/golden.yaml: build.labels {unknown} are not in the detection vocabulary"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR)
    parser.add_argument(
        "--dataset",
        type=Path,
        help="an existing sample dataset (default: render the demo's into a temporary folder)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.dataset or write_sample_dataset(
            Path(scratch) / "sample", episodes=DEMO_EPISODES, seed=DEMO_SEED
        )
        golden, images = build_golden_set(root)
        write_golden_set(args.out, golden, images)
    print(f"wrote {len(golden.items)} keyframes of {len(golden.episodes)} episodes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
