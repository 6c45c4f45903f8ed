"""HDF5 datasets for tests, written deterministically: from the sample generator's episodes
(rendered in memory) or from the real G1 fixture's frames (decoded with PyAV and downscaled,
as ../shared/acceptance/formats.sh builds them), into robomimic, LIBERO and ALOHA containers."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Ep:
    task: str
    frames: dict[str, np.ndarray]  # camera -> uint8 [T, H, W, 3]
    state: np.ndarray
    action: np.ndarray


def sample_episodes(count: int = 3, seed: int = 0, size: tuple[int, int] = (64, 48)) -> list[Ep]:
    from enrich_assets.datasets.sample.generator import (
        CAMERAS,
        next_state_action,
        plan_dataset,
        plan_state,
        render_episode,
    )

    plans, _ = plan_dataset(count, seed, (20, 28))
    out = []
    for plan in plans:
        frames, _ = render_episode(plan, CAMERAS, *size)
        state = plan_state(plan)
        names = dict(zip(CAMERAS, ("agentview", "robot0_eye_in_hand"), strict=True))
        out.append(
            Ep(plan.task, {names[k]: v for k, v in frames.items()}, state, next_state_action(state))
        )
    return out


def g1_episodes(root: Path, count: int = 2, frames: int = 24) -> list[Ep]:
    """Real pixels and trajectories: the first frames of G1 episodes, every 4th pixel."""
    import av
    import pyarrow.parquet as pq

    task = json.loads((root / "meta/tasks.jsonl").read_text().splitlines()[0])["task"]
    out = []
    for ep in range(count):
        video = root / f"videos/chunk-000/observation.images.cam_high/episode_{ep:06d}.mp4"
        with av.open(str(video)) as c:
            decoded = [
                f.to_ndarray(format="rgb24")[::4, ::4]
                for _, f in zip(range(frames), c.decode(video=0), strict=False)
            ]
        table = pq.read_table(root / f"data/chunk-000/episode_{ep:06d}.parquet").slice(0, frames)

        def column(name: str, t=table) -> np.ndarray:  # noqa: ANN001
            return np.stack(t.column(name).to_numpy(zero_copy_only=False)).astype(np.float32)

        out.append(
            Ep(
                task,
                {"agentview": np.stack(decoded)},
                column("observation.state"),
                column("action"),
            )
        )
    return out


def write_robomimic(path: Path, episodes: list[Ep]) -> Path:
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["total"] = sum(len(e.action) for e in episodes)
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
        for i, e in enumerate(episodes):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = len(e.action)
            for cam, frames in e.frames.items():
                g.create_dataset(f"obs/{cam}_image", data=frames)
            g.create_dataset("obs/robot0_eef_pos", data=e.state[:, :3])
            g.create_dataset("actions", data=e.action)
            g.create_dataset("states", data=e.state)
            rewards = np.zeros(len(e.action), np.float32)
            rewards[-1] = 1
            g.create_dataset("rewards", data=rewards)
            g.create_dataset("dones", data=(rewards > 0).astype(np.uint8))
        f.create_dataset(
            "mask/train", data=np.array([f"demo_{i}".encode() for i in range(len(episodes))])
        )
    return path


def write_libero(path: Path, episodes: list[Ep], instruction: str) -> Path:
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["problem_info"] = json.dumps(
            {"problem_name": "libero_tabletop_manipulation", "language_instruction": instruction}
        )
        data.attrs["env_args"] = json.dumps({"env_name": "Libero_Tabletop_Manipulation"})
        for i, e in enumerate(episodes):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = len(e.action)
            names = {"agentview": "agentview_rgb", "robot0_eye_in_hand": "eye_in_hand_rgb"}
            for cam, frames in e.frames.items():
                g.create_dataset(f"obs/{names.get(cam, cam + '_rgb')}", data=frames)
            g.create_dataset("obs/joint_states", data=e.state[:, :5])
            g.create_dataset("obs/gripper_states", data=e.state[:, 5:])
            g.create_dataset("obs/ee_states", data=e.state[:, :3])
            g.create_dataset("actions", data=e.action)
            g.create_dataset("states", data=e.state)
    return path


def jpeg(image: np.ndarray) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=90)
    return np.frombuffer(out.getvalue(), np.uint8)


def write_aloha(folder: Path, episodes: list[Ep], compress: bool = True) -> Path:
    """One file per episode; JPEG bytes per frame (vlen uint8) when `compress`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, e in enumerate(episodes):
        with h5py.File(folder / f"episode_{i}.hdf5", "w") as f:
            f.attrs["sim"] = False
            f.attrs["compress"] = compress
            for cam, frames in e.frames.items():
                name = f"observations/images/{cam}"
                if compress:
                    ds = f.create_dataset(name, (len(frames),), dtype=h5py.vlen_dtype(np.uint8))
                    for t, image in enumerate(frames):
                        ds[t] = jpeg(image)
                else:
                    f.create_dataset(name, data=frames)
            f.create_dataset("observations/qpos", data=e.state)
            f.create_dataset("action", data=e.action)
    return folder
