"""The values `make_tfds_reference.py` feeds the real TFDS, shared with the tests that read its
output back (this module needs neither TensorFlow nor TFDS).

Two builders, each with five episodes of a few steps and 16x16 images (train: 3 episodes
in 2 shards, val: 2 in 2 shards):
- `tiny_rlds`: RLDS as the RLDS/TFDS docs show it: `observation/{image (PNG), wrist_image
  (JPEG), state}`, a flat `action` tensor, `language_instruction` per step, reward/discount;
- `tiny_bridge`: Open X-Embodiment bridge style: `observation/{image (JPEG), state,
  natural_language_instruction}` and a nested `action` dict.
The episode id (`episode_metadata/episode_id`) tells which generated episode a record holds:
TFDS shuffles examples by key, so record order is not generation order.
"""

from __future__ import annotations

import numpy as np

SIZE = 16
STEPS = (5, 3, 4, 2, 3)  # steps per episode, by episode id
SPLITS = {"train": (0, 1, 2), "val": (3, 4)}  # split -> episode ids
TASKS = (
    "pick up the red cube",
    "open the drawer",
    "push the green block left",
    "close the drawer",
    "stack the cups",
)


def image(episode: int, step: int, camera: int = 0) -> np.ndarray:
    """A 16x16 RGB frame unique to (episode, step, camera): gradients plus an offset."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    rgb = np.stack([x * 16, y * 16, np.full_like(x, 40 * step + 90 * camera)], axis=-1)
    return ((rgb + 37 * episode) % 256).astype(np.uint8)


def state(episode: int, step: int, dim: int) -> np.ndarray:
    return (np.arange(dim, dtype=np.float32) + 10 * episode + step / 4).astype(np.float32)


def action(episode: int, step: int) -> np.ndarray:
    return np.array([episode, step, -0.5 * step], np.float32)


def bridge_action(episode: int, step: int) -> dict[str, object]:
    """Bridge's nested action; flattened by the reader in sorted key order:
    open_gripper, rotation_delta[3], terminate_episode, world_vector[3]."""
    last = step == STEPS[episode] - 1
    return {
        "world_vector": np.array([0.1 * step, 0.2, episode], np.float32),
        "rotation_delta": np.array([0.0, -0.25 * step, 1.5], np.float32),
        "open_gripper": step % 2 == 0,
        "terminate_episode": np.float32(1.0 if last else 0.0),
    }


def bridge_action_vector(episode: int, step: int) -> np.ndarray:
    a = bridge_action(episode, step)
    return np.concatenate(
        [
            [float(a["open_gripper"])],
            a["rotation_delta"],
            [a["terminate_episode"]],
            a["world_vector"],
        ]  # type: ignore[list-item]
    ).astype(np.float32)
