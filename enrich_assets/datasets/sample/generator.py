"""A synthetic pick-and-place dataset with planted defects and its ground truth.

Each episode: a table with 2-4 coloured objects; a gripper reaches for the target,
grasps it, carries it to a place on the table and releases it. Objects, colours, lighting,
cameras, task wording and timing vary per episode; everything follows from the seed, and
episode ``i`` is the same whatever the number of episodes (only the defect placement
depends on it). With at least five episodes the dataset carries one of each defect:
blurry frames, a too-dark episode, an all-black segment and a near-duplicate episode.
``meta/sample_truth.json`` records all of it; docs/sample_dataset.md describes the format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from enrich_assets.datasets.lerobot.v3_writer import (
    EpisodeData,
    FileLimits,
    LeRobotV3Writer,
    refuse_non_empty,
)
from enrich_assets.datasets.sample.scene import (
    COLOURS,
    FINGER_REACH,
    SHAPES,
    Box,
    Gripper,
    Lighting,
    Placed,
    SceneObject,
    View,
    expose,
    render_background,
    render_frame,
)

CAMERAS = ("observation.images.front", "observation.images.top")
DEMO_EPISODES, DEMO_SEED = 12, 0  # the sample `make demo` writes; data/golden/ is cut from it
STATE_NAMES = ["x", "y", "z", "gripper", "shoulder_pan", "arm_reach"]
TRUTH_PATH = "meta/sample_truth.json"
PLACES = {"left": (0.14, 0.55), "right": (0.86, 0.55), "front": (0.5, 0.88), "back": (0.5, 0.14)}
PLACE_WORDS = {
    "left": "on the left",
    "right": "on the right",
    "front": "at the front",
    "back": "at the back",
}
TASK_TEMPLATES = (
    "pick up the {obj} and place it {where}",
    "put the {obj} {where}",
    "grab the {obj} and put it {where} of the table",
)
SUBTASKS = ("reach", "grasp", "carry", "place")
GRASP_Z = 0.02  # fingertip height when grasping
TRAVEL_Z = 0.35
NOISE_SIGMA = 2.0
DARK_GAIN = 0.12
BLUR_RADIUS = 3
ROBOT_BASE = (0.5, 1.3)  # (u, v) of the arm's shoulder, in front of the table


@dataclass(frozen=True)
class EpisodePlan:
    """Everything that decides one episode's content before rendering."""

    objects: tuple[Placed, ...]
    target: int
    place: str
    task: str
    keyframes: tuple[int, ...]  # frames of the 9 gripper waypoints; the last is length - 1
    start: tuple[float, float]
    lighting: Lighting
    views: tuple[View, View]  # front, top
    table_rgb: tuple[int, int, int]
    wall_rgb: tuple[int, int, int]
    noise_seed: tuple[int, ...]
    state_jitter: float = 0.0
    blurry_frames: tuple[int, ...] = ()
    black_frames: tuple[int, ...] = ()

    @property
    def length(self) -> int:
        return self.keyframes[-1] + 1

    @property
    def grasp_frame(self) -> int:  # fingers closed on the object: it moves from here
        return self.keyframes[3]

    @property
    def release_frame(self) -> int:  # object back on the table: fingers open from here
        return self.keyframes[6]

    def subtasks(self) -> list[dict]:
        k = self.keyframes
        bounds = (0, k[2], k[3], k[6], self.length)
        return [
            {"name": name, "start_frame": bounds[i], "end_frame": bounds[i + 1]}
            for i, name in enumerate(SUBTASKS)
        ]


def write_sample_dataset(
    out: Path,
    episodes: int = 12,
    seed: int = 0,
    *,
    width: int = 128,
    height: int = 96,
    fps: int = 10,
    cameras: int = 2,
    frames_per_episode: tuple[int, int] = (40, 70),
    limits: FileLimits | None = None,
) -> Path:
    """Render and write the sample dataset at `out` (absent or empty); returns `out`."""
    out = Path(out)
    _check_args(out, episodes, width, height, fps, cameras, frames_per_episode)
    plans, defects = plan_dataset(episodes, seed, frames_per_episode)
    keys = CAMERAS[:cameras]
    writer = LeRobotV3Writer(
        out,
        fps=fps,
        state_names=STATE_NAMES,
        action_names=STATE_NAMES,
        robot_type="enrich_assets_sample_gripper",
        limits=limits or FileLimits(),
    )
    truths = []
    try:
        for index, plan in enumerate(plans):
            frames, boxes = render_episode(plan, keys, width, height)
            state = plan_state(plan)
            writer.add_episode(EpisodeData(plan.task, state, next_state_action(state), frames))
            truths.append(episode_truth(index, plan, fps, frames, boxes))
        truth = {
            "version": 1,
            "seed": seed,
            "fps": fps,
            "width": width,
            "height": height,
            "cameras": list(keys),
            "state_names": STATE_NAMES,
            "box_format": "[x_min, y_min, x_max, y_max], inclusive pixels, every frame; "
            "the drawn extent of the object even where something in front hides it",
            "subtask_frames": "start_frame inclusive, end_frame exclusive",
            "defects": _measured(defects, truths),
            "episodes": truths,
        }
        writer.close(extra_files={TRUTH_PATH: json.dumps(truth).encode()})
    except BaseException:
        writer.abort()
        raise
    return out


def plan_dataset(
    episodes: int, seed: int, frames_per_episode: tuple[int, int]
) -> tuple[list[EpisodePlan], dict]:
    """Plans for all episodes, with the defects planted; returns (plans, defect summary)."""
    plans = [plan_episode(seed, i, frames_per_episode) for i in range(episodes)]
    chosen = [int(i) for i in np.random.default_rng([seed, 1]).permutation(episodes)[:5]]
    defects: dict = {}
    if len(chosen) >= 1:
        i = chosen[0]
        length = plans[i].length
        jitter = np.random.default_rng([seed, 3]).integers(-2, 3, size=3)
        frames = tuple(int(length * q // 4 + j) for q, j in zip((1, 2, 3), jitter, strict=True))
        plans[i] = replace(plans[i], blurry_frames=frames)
        defects["blurry"] = {
            "episode_index": i,
            "frame_indices": list(frames),
            "box_radius": BLUR_RADIUS,
        }
    if len(chosen) >= 2:
        i = chosen[1]
        plans[i] = replace(plans[i], lighting=replace(plans[i].lighting, gain=DARK_GAIN))
        defects["dark_episode"] = {"episode_index": i, "gain": DARK_GAIN}
    if len(chosen) >= 3:
        i = chosen[2]
        length = plans[i].length
        frames = tuple(range(length // 3, length // 3 + max(3, length // 8)))
        plans[i] = replace(plans[i], black_frames=frames)
        defects["black_segment"] = {"episode_index": i, "frame_indices": list(frames)}
    if len(chosen) >= 5:
        source, copy = sorted(chosen[3:5])
        plans[copy] = replace(plans[source], noise_seed=(seed, 2, copy), state_jitter=1e-4)
        defects["near_duplicate"] = {"episode_index": copy, "source_episode_index": source}
    return plans, defects


def plan_episode(seed: int, index: int, frames_per_episode: tuple[int, int]) -> EpisodePlan:
    rng = np.random.default_rng([seed, 0, index])
    count = int(rng.integers(2, 5))
    colours = rng.choice(list(COLOURS), size=count, replace=False)
    positions = _spread_positions(rng, count)
    objects = tuple(
        Placed(
            SceneObject(
                str(colour),
                str(rng.choice(SHAPES)),
                rng.uniform(0.09, 0.13),
                rng.uniform(0.08, 0.16),
            ),
            u,
            v,
        )
        for colour, (u, v) in zip(colours, positions, strict=True)
    )
    target = int(rng.integers(count))
    place = _choose_place(rng, objects, target)
    template = TASK_TEMPLATES[int(rng.integers(len(TASK_TEMPLATES)))]
    task = template.format(obj=objects[target].obj.name, where=PLACE_WORDS[place])
    length = int(rng.integers(frames_per_episode[0], frames_per_episode[1] + 1))
    fractions = np.array([0.22, 0.32, 0.40, 0.48, 0.68, 0.78, 0.86]) + rng.uniform(-0.015, 0.015, 7)
    keyframes = [0, *np.round(fractions * (length - 1)).astype(int).tolist(), length - 1]
    for i in range(1, len(keyframes) - 1):  # short episodes: keep every move at least a frame
        keyframes[i] = max(keyframes[i], keyframes[i - 1] + 1)
    lighting = Lighting(
        gain=rng.uniform(0.8, 1.15),
        tint=tuple(rng.uniform(0.9, 1.1, 3)),
        slope=rng.uniform(-0.3, 0.3),
    )
    views = (
        View(
            "front",
            shift=rng.uniform(-0.06, 0.06),
            zoom=rng.uniform(0.9, 1.05),
            horizon=rng.uniform(0.3, 0.42),
        ),
        View("top", shift=rng.uniform(-0.08, 0.08), zoom=rng.uniform(0.85, 1.0)),
    )
    wood = np.array([150, 110, 70]) * rng.uniform(0.8, 1.2) + rng.integers(-15, 16, 3)
    wall = np.full(3, rng.uniform(150, 215)) + rng.integers(-20, 21, 3)
    return EpisodePlan(
        objects=objects,
        target=target,
        place=place,
        task=task,
        keyframes=tuple(int(k) for k in keyframes),
        start=(rng.uniform(0.35, 0.65), rng.uniform(0.85, 0.98)),
        lighting=lighting,
        views=views,
        table_rgb=tuple(int(c) for c in np.clip(wood, 0, 255)),
        wall_rgb=tuple(int(c) for c in np.clip(wall, 0, 255)),
        noise_seed=(seed, 2, index),
    )


def plan_gripper(plan: EpisodePlan) -> np.ndarray:
    """Gripper (u, v, z, opening) per frame: smooth moves between the 9 waypoints."""
    target = plan.objects[plan.target]
    size = target.obj.size
    closed = float(np.clip((size / 2 / FINGER_REACH - 0.3) / 0.7, 0.0, 1.0))
    tu, tv = target.u, target.v
    pu, pv = PLACES[plan.place]
    su, sv = plan.start
    waypoints = np.array(
        [
            (su, sv, 0.55, 1.0),  # start
            (tu, tv, TRAVEL_Z, 1.0),  # above the target
            (tu, tv, GRASP_Z, 1.0),  # around it: reach ends
            (tu, tv, GRASP_Z, closed),  # closed on it: grasp ends
            (tu, tv, TRAVEL_Z, closed),  # lifted
            (pu, pv, TRAVEL_Z, closed),  # above the place
            (pu, pv, GRASP_Z, closed),  # set down: carry ends
            (pu, pv, GRASP_Z, 1.0),  # released
            (pu, pv, 0.55, 1.0),  # retreated
        ]
    )
    keys = np.asarray(plan.keyframes)
    frames = np.arange(plan.length)
    segment = np.clip(np.searchsorted(keys, frames, side="right") - 1, 0, len(keys) - 2)
    a = (frames - keys[segment]) / (keys[segment + 1] - keys[segment])
    s = (a * a * (3 - 2 * a))[:, None]
    return waypoints[segment] + (waypoints[segment + 1] - waypoints[segment]) * s


def plan_state(plan: EpisodePlan) -> np.ndarray:
    """observation.state: gripper x, y, z, opening, then the two arm joints that reach it."""
    u, v, z, opening = plan_gripper(plan).T
    pan = np.arctan2(u - ROBOT_BASE[0], ROBOT_BASE[1] - v)
    reach = np.sqrt((u - ROBOT_BASE[0]) ** 2 + (ROBOT_BASE[1] - v) ** 2 + z**2)
    state = np.stack([u, v, z, opening, pan, reach], axis=1)
    if plan.state_jitter:
        state += np.random.default_rng(plan.noise_seed).normal(0, plan.state_jitter, state.shape)
    return state.astype(np.float32)


def next_state_action(state: np.ndarray) -> np.ndarray:
    """action[t] = the state commanded for t + 1 (the last frame holds its pose)."""
    return np.concatenate([state[1:], state[-1:]]).astype(np.float32)


def render_episode(
    plan: EpisodePlan, cameras: tuple[str, ...], width: int, height: int
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, list[Box | None]]]]:
    """Frames per camera (T x H x W x 3 uint8, defects applied) and boxes per camera and name."""
    gripper = plan_gripper(plan)
    rng = np.random.default_rng(plan.noise_seed)
    views = dict(zip(cameras, plan.views, strict=False))
    backgrounds = {
        key: render_background(view, width, height, plan.table_rgb, plan.wall_rgb)
        for key, view in views.items()
    }
    frames = {key: np.empty((plan.length, height, width, 3), np.uint8) for key in cameras}
    boxes: dict[str, dict[str, list[Box | None]]] = {key: {} for key in cameras}
    for t in range(plan.length):
        objects = _objects_at(plan, gripper[t], t)
        pose = Gripper(*gripper[t])
        for key, view in views.items():
            clean, object_boxes, gripper_box = render_frame(backgrounds[key], view, objects, pose)
            noise = rng.standard_normal(clean.shape, dtype=np.float32) * NOISE_SIGMA
            frames[key][t] = expose(clean, plan.lighting, noise)
            for name, box in (*object_boxes.items(), ("gripper", gripper_box)):
                boxes[key].setdefault(name, []).append(box)
    for key in cameras:
        for t in plan.blurry_frames:
            frames[key][t] = box_blur(frames[key][t], BLUR_RADIUS)
        frames[key][list(plan.black_frames)] = 0
    return frames, boxes


def box_blur(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges repeated: a defocused frame."""
    size = 2 * radius + 1
    padded = np.pad(
        image.astype(np.float32), ((radius, radius), (radius, radius), (0, 0)), mode="edge"
    )
    rows = sum(padded[i : i + image.shape[0]] for i in range(size))
    cols = sum(rows[:, i : i + image.shape[1]] for i in range(size))
    return np.clip(cols / size**2 + 0.5, 0, 255).astype(np.uint8)


def episode_truth(
    index: int,
    plan: EpisodePlan,
    fps: int,
    frames: dict[str, np.ndarray],
    boxes: dict[str, dict[str, list[Box | None]]],
) -> dict:
    """The ground-truth record of one episode (see docs/sample_dataset.md)."""
    target = plan.objects[plan.target].obj
    return {
        "episode_index": index,
        "task": plan.task,
        "length": plan.length,
        "objects": [
            {
                "name": p.obj.name,
                "colour": p.obj.colour,
                "shape": p.obj.shape,
                "table_uv": [round(p.u, 4), round(p.v, 4)],
                "is_target": i == plan.target,
            }
            for i, p in enumerate(plan.objects)
        ],
        "target": target.name,
        "place": plan.place,
        "grasp_frame_index": plan.grasp_frame,
        "grasp_timestamp": plan.grasp_frame / fps,
        "release_frame_index": plan.release_frame,
        "release_timestamp": plan.release_frame / fps,
        "subtasks": plan.subtasks(),
        "lighting_gain": round(plan.lighting.gain, 4),
        "mean_brightness": {key: round(float(f.mean()), 2) for key, f in frames.items()},
        "blurry_frames": list(plan.blurry_frames),
        "black_frames": list(plan.black_frames),
        "boxes": {
            key: {name: [list(b) if b else None for b in seq] for name, seq in named.items()}
            for key, named in boxes.items()
        },
    }


def _objects_at(plan: EpisodePlan, gripper: np.ndarray, t: int) -> list[Placed]:
    """Object positions at frame t: the target rides with the gripper while grasped."""
    objects = list(plan.objects)
    if t >= plan.grasp_frame:
        u, v, z = gripper[:3]
        carried = plan.grasp_frame <= t < plan.release_frame
        if not carried:
            u, v = PLACES[plan.place]
        objects[plan.target] = replace(
            objects[plan.target], u=float(u), v=float(v), z=float(z - GRASP_Z) * carried
        )
    return objects


def _spread_positions(rng: np.random.Generator, count: int) -> list[tuple[float, float]]:
    """Object footprints on the table, at least 0.22 apart."""
    positions: list[tuple[float, float]] = []
    while len(positions) < count:
        u, v = rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.72)
        if all(np.hypot(u - pu, v - pv) >= 0.22 for pu, pv in positions):
            positions.append((float(u), float(v)))
    return positions


def _choose_place(rng: np.random.Generator, objects: tuple[Placed, ...], target: int) -> str:
    """A place away from the target and clear of the other objects."""

    def clearance(name: str) -> float:
        pu, pv = PLACES[name]
        others = [np.hypot(pu - p.u, pv - p.v) for i, p in enumerate(objects) if i != target]
        return min(others, default=1.0)

    far = [
        n
        for n in PLACES
        if np.hypot(PLACES[n][0] - objects[target].u, PLACES[n][1] - objects[target].v) > 0.3
    ]
    clear = [n for n in far if clearance(n) > 0.16]
    options = clear or far or list(PLACES)
    return options[int(rng.integers(len(options)))]


def _measured(defects: dict, truths: list[dict]) -> dict:
    """The defect summary, with the dark episode's measured brightness added."""
    if "dark_episode" in defects:
        episode = truths[defects["dark_episode"]["episode_index"]]
        defects["dark_episode"]["mean_brightness"] = episode["mean_brightness"]
    return defects


def _check_args(
    out: Path,
    episodes: int,
    width: int,
    height: int,
    fps: int,
    cameras: int,
    frames: tuple[int, int],
) -> None:
    refuse_non_empty(out)
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(
            f"width and height must be even and at least 32 (yuv420p), got {width}x{height}"
        )
    if fps < 1:
        raise ValueError(f"fps must be positive, got {fps}")
    if cameras not in (1, 2):
        raise ValueError(f"cameras must be 1 or 2, got {cameras}")
    if not 20 <= frames[0] <= frames[1]:
        raise ValueError(
            f"frames_per_episode must be (min, max) with 20 <= min <= max, got {frames}"
        )
