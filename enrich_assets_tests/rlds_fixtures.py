"""RLDS builder directories for tests, written deterministically in the layout the real TFDS
writes (compare `fixtures/rlds/`, written by TFDS itself with `compat/make_tfds_reference.py`):
`features.json` in TFDS's proto-JSON form, `dataset_info.json` with `shardLengths`, and
`<name>-train.tfrecord-NNNNN-of-NNNNN` shards of one `tf.train.Example` per episode, steps
flattened under `steps/` (written with the `tfrecord` package's writer, which frames and
checksums records as TensorFlow does). Episodes come from `hdf5_fixtures` (the sample
generator, or real G1 frames and trajectories); images are stored as JPEG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tfrecord.writer import TFRecordWriter

from enrich_assets_tests.hdf5_fixtures import Ep, jpeg

TENSOR = "tensorflow_datasets.core.features.tensor_feature.Tensor"
SCALAR = "tensorflow_datasets.core.features.scalar.Scalar"
DICT = "tensorflow_datasets.core.features.features_dict.FeaturesDict"


def _tensor(dtype: str, *dims: int) -> dict[str, Any]:
    shape = {"dimensions": [str(d) for d in dims]} if dims else {}
    return {
        "pythonClassName": TENSOR if dims else SCALAR,
        "tensor": {"dtype": dtype, "encoding": "none", "shape": shape},
    }


def _dict(features: dict[str, Any]) -> dict[str, Any]:
    return {"featuresDict": {"features": dict(sorted(features.items()))}, "pythonClassName": DICT}


def features_json(e: Ep) -> dict[str, Any]:
    """RLDS steps as TFDS declares them: JPEG cameras, state, action, language_instruction."""
    cameras = {
        cam: {
            "image": {
                "dtype": "uint8",
                "encodingFormat": "jpeg",
                "shape": {"dimensions": [str(d) for d in frames.shape[1:]]},
            },
            "pythonClassName": "tensorflow_datasets.core.features.image_feature.Image",
        }
        for cam, frames in e.frames.items()
    }
    step = {
        "observation": _dict({**cameras, "state": _tensor("float32", e.state.shape[1])}),
        "action": _tensor("float32", e.action.shape[1]),
        "language_instruction": {
            "pythonClassName": "tensorflow_datasets.core.features.text_feature.Text",
            "text": {},
        },
        **{k: _tensor("bool") for k in ("is_first", "is_last", "is_terminal")},
        **{k: _tensor("float32") for k in ("reward", "discount")},
    }
    steps = {
        "pythonClassName": "tensorflow_datasets.core.features.dataset_feature.Dataset",
        "sequence": {"feature": _dict(step), "length": "-1"},
    }
    return _dict({"steps": steps})


def example(e: Ep) -> dict[str, tuple[Any, str]]:
    """One episode as the tfrecord writer's datum: every step key holds all steps' values."""
    count = len(e.action)
    last = np.arange(count) == count - 1
    datum: dict[str, tuple[Any, str]] = {
        f"steps/observation/{cam}": ([jpeg(f).tobytes() for f in frames], "byte")
        for cam, frames in e.frames.items()
    }
    return datum | {
        "steps/observation/state": (e.state.reshape(-1).tolist(), "float"),
        "steps/action": (e.action.reshape(-1).tolist(), "float"),
        "steps/language_instruction": ([e.task.encode()] * count, "byte"),
        "steps/is_first": ((np.arange(count) == 0).astype(int).tolist(), "int"),
        "steps/is_last": (last.astype(int).tolist(), "int"),
        "steps/is_terminal": (last.astype(int).tolist(), "int"),
        "steps/reward": (last.astype(float).tolist(), "float"),
        "steps/discount": ([1.0] * count, "float"),
    }


def write_builder(root: Path, name: str, episodes: list[Ep], per_shard: int = 2) -> Path:
    """`<root>/<name>/1.0.0/`: the train split, `per_shard` episodes per shard."""
    out = root / name / "1.0.0"
    out.mkdir(parents=True, exist_ok=True)
    groups = [episodes[i : i + per_shard] for i in range(0, len(episodes), per_shard)]
    for number, group in enumerate(groups):
        writer = TFRecordWriter(
            str(out / f"{name}-train.tfrecord-{number:05d}-of-{len(groups):05d}")
        )
        for e in group:
            writer.write(example(e))
        writer.close()
    (out / "features.json").write_text(json.dumps(features_json(episodes[0]), indent=4))
    split = {
        "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        "name": "train",
        "shardLengths": [str(len(g)) for g in groups],
    }
    info = {"fileFormat": "tfrecord", "name": name, "splits": [split], "version": "1.0.0"}
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2))
    return out
