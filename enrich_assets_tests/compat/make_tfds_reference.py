"""Write the RLDS test fixture with the real TensorFlow Datasets (not our reading of its docs).

Needs its own venv (TensorFlow is not a dependency of this project):
    uv venv --python 3.11 /tmp/tfds-venv
    uv pip install --python /tmp/tfds-venv/bin/python tensorflow-cpu tensorflow-datasets
    /tmp/tfds-venv/bin/python enrich_assets_tests/compat/make_tfds_reference.py \
        enrich_assets_tests/fixtures/rlds

Writes `<out>/tiny_rlds/1.0.0/` and `<out>/tiny_bridge/1.0.0/` (features.json,
dataset_info.json, `*.tfrecord-NNNNN-of-NNNNN` shards; train in 2 shards, val in 2) from the
values in `tfds_reference_values.py`, which the tests compare the reader's output against.
Used to write the committed fixture with tensorflow-cpu 2.21.0, tensorflow-datasets 4.9.10.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

sys.path.insert(0, str(Path(__file__).parent))
import tfds_reference_values as v  # noqa: E402

IMAGE = (v.SIZE, v.SIZE, 3)


def _steps(episode: int, bridge: bool) -> list[dict[str, object]]:
    out = []
    count = v.STEPS[episode]
    for t in range(count):
        common = {
            "is_first": t == 0,
            "is_last": t == count - 1,
            "is_terminal": t == count - 1,
            "reward": np.float32(1.0 if t == count - 1 else 0.0),
            "discount": np.float32(1.0),
        }
        if bridge:
            observation = {
                "image": v.image(episode, t),
                "state": v.state(episode, t, 7),
                "natural_language_instruction": v.TASKS[episode],
            }
            out.append({"observation": observation, "action": v.bridge_action(episode, t)})
        else:
            observation = {
                "image": v.image(episode, t),
                "wrist_image": v.image(episode, t, camera=1),
                "state": v.state(episode, t, 4),
            }
            out.append(
                {
                    "observation": observation,
                    "action": v.action(episode, t),
                    "language_instruction": v.TASKS[episode],
                }
            )
        out[-1].update(common)
    return out


def _features(bridge: bool) -> tfds.features.FeaturesDict:
    scalar = {
        "is_first": tfds.features.Scalar(np.bool_),
        "is_last": tfds.features.Scalar(np.bool_),
        "is_terminal": tfds.features.Scalar(np.bool_),
        "reward": tfds.features.Scalar(np.float32),
        "discount": tfds.features.Scalar(np.float32),
    }
    if bridge:
        step = {
            "observation": tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=IMAGE, encoding_format="jpeg"),
                    "state": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                    "natural_language_instruction": tfds.features.Text(),
                }
            ),
            "action": tfds.features.FeaturesDict(
                {
                    "world_vector": tfds.features.Tensor(shape=(3,), dtype=np.float32),
                    "rotation_delta": tfds.features.Tensor(shape=(3,), dtype=np.float32),
                    "open_gripper": tfds.features.Scalar(np.bool_),
                    "terminate_episode": tfds.features.Scalar(np.float32),
                }
            ),
        }
    else:
        step = {
            "observation": tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=IMAGE, encoding_format="png"),
                    "wrist_image": tfds.features.Image(shape=IMAGE, encoding_format="jpeg"),
                    "state": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                }
            ),
            "action": tfds.features.Tensor(shape=(3,), dtype=np.float32),
            "language_instruction": tfds.features.Text(),
        }
    return tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset({**step, **scalar}),
            "episode_metadata": tfds.features.FeaturesDict(
                {"episode_id": tfds.features.Scalar(np.int64)}
            ),
        }
    )


class _Rlds(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The episodes of `v.SPLITS`; `BRIDGE` picks the feature layout."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Test fixture for enrich-assets' RLDS reader."}
    BRIDGE = False

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, features=_features(self.BRIDGE))

    def _split_generators(self, dl_manager):  # noqa: ANN001, ANN202
        return {split: self._generate_examples(ids) for split, ids in v.SPLITS.items()}

    def _generate_examples(self, ids):  # noqa: ANN001, ANN202
        for episode in ids:
            steps = _steps(episode, self.BRIDGE)
            yield (
                f"episode_{episode}",
                {"steps": steps, "episode_metadata": {"episode_id": episode}},
            )


class TinyRlds(_Rlds):
    pass


class TinyBridge(_Rlds):
    BRIDGE = True


def main(out: Path) -> None:
    config = tfds.download.DownloadConfig(num_shards=2)
    for cls in (TinyRlds, TinyBridge):
        name = cls.name
        with tempfile.TemporaryDirectory() as tmp:
            builder = cls(data_dir=tmp)
            builder.download_and_prepare(download_config=config)
            written = Path(tmp) / name / "1.0.0"
            target = out / name / "1.0.0"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(written, target)
            print(target, sorted(p.name for p in target.iterdir()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
