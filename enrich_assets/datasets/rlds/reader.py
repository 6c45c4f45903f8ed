"""A reader for RLDS datasets: a versioned TFDS builder directory (`.../bridge/0.1.0`) with
`features.json`, `dataset_info.json` and `<name>-<split>.tfrecord-NNNNN-of-NNNNN` shards,
read without TensorFlow.

Episodes are numbered 0.. in global record order: splits in the order `dataset_info.json`
lists them (others after, by name), shards by number, records in file order. A shard the
info says holds N records always takes N indices, so damage in one shard never renumbers
the episodes of the next. (TFDS shuffles examples when it writes, so record order is not
the order the builder generated them in.)

Listing reads every shard once (each record is parsed to count its steps and read its
task; nothing is decoded) and keeps, per record, only its offset, checksum, step count and
task; the scan is cached per shard file (name, size, mtime) for the process. An episode's
frames and rows are read later by seeking to its record. A record that fails its checksum,
does not parse, or lies past a broken header is its episode's `problem`: only that
episode fails.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError
from tfrecord import example_pb2

from enrich_assets.datasets.episode import EpisodeRef
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.rlds import tfrecord
from enrich_assets.datasets.rlds.features import (
    SETTINGS_FILE,
    Layout,
    RLDSSettings,
    layout,
    load_settings,
)
from enrich_assets.datasets.rlds.steps import RecordAt, RLDSFrames, RLDSRows, step_count, text
from enrich_assets.infra.files import stat_signature

SHARD = re.compile(r".+-(?P<split>[^-.]+)\.tfrecord-(?P<shard>\d+)-of-(?P<count>\d+)$")


def is_rlds_builder(location: str) -> bool:
    path = Path(location)
    return (path / "features.json").is_file() and (path / "dataset_info.json").is_file()


def _info(root: Path) -> dict:
    path = root / "dataset_info.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(path, f"unreadable ({exc})") from exc
    if info.get("fileFormat", "tfrecord") != "tfrecord":
        raise DatasetError(path, f"fileFormat {info['fileFormat']!r}: only tfrecord is read")
    return info


def shards(root: Path, splits: list[str] | None = None) -> list[tuple[str, Path]]:
    """(split, shard file) in episode order: info's split order, then shard number."""
    order = [s.get("name", "") for s in _info(root).get("splits", [])]
    found = [(m["split"], int(m["shard"]), p) for p in root.iterdir() if (m := SHARD.match(p.name))]
    rank = {name: i for i, name in enumerate(order)}
    found.sort(key=lambda f: (rank.get(f[0], len(rank)), f[0], f[1]))
    return [(split, path) for split, _, path in found if splits is None or split in splits]


def change_signature(location: str) -> str:
    root = Path(location)
    meta = [root / n for n in ("features.json", "dataset_info.json", SETTINGS_FILE)]
    return stat_signature(root, [*(p for p in meta if p.is_file()), *(p for _, p in shards(root))])


@dataclass(frozen=True)
class Scanned:
    """What listing keeps of one record."""

    record: tfrecord.Record | None  # None past a broken header
    steps: int = 0
    task: str = ""
    problem: str | None = None


@functools.lru_cache(maxsize=4096)
def _scan(shard: Path, size: int, mtime_ns: int, count_key: str, task_key: str | None) -> tuple:
    """Every record of a shard (cached by the shard's size and mtime)."""
    out: list[Scanned] = []
    try:
        for record, data, problem in tfrecord.scan(shard):
            if data is None:
                out.append(Scanned(record, problem=problem))
                continue
            where = f"{shard}:record {len(out)}"
            try:
                example = example_pb2.Example.FromString(data)
                steps = step_count(example, count_key, where)
                out.append(Scanned(record, steps, text(example, task_key, where)))
            except DecodeError as exc:
                out.append(Scanned(record, problem=f"not a tf.train.Example ({exc})"))
            except EpisodeError as exc:
                out.append(Scanned(record, problem=exc.problem))
    except tfrecord.RecordError as exc:
        out.append(Scanned(None, problem=str(exc)))
    return tuple(out)


class RLDSReader:
    format = "rlds"

    def __init__(self, location: Path, dataset_id: str) -> None:
        self.root = location
        self.location = str(location)
        self.dataset_id = dataset_id
        self.settings: RLDSSettings = load_settings(location)
        self.layout: Layout = layout(
            location / "features.json", self.settings, location / SETTINGS_FILE
        )
        info = _info(location)
        self.shard_lengths = {
            s.get("name", ""): [int(n) for n in s.get("shardLengths", [])]
            for s in info.get("splits", [])
        }
        self.shards = shards(location, self.settings.splits)
        if not self.shards:
            raise DatasetError(location, "holds no *.tfrecord-NNNNN-of-NNNNN shards")
        self._listed: list[EpisodeRef] | None = None

    def _records(self, split: str, shard: Path, number: int) -> list[Scanned]:
        """The shard's records, padded with problem entries up to the count the info
        declares when a broken header hid the rest."""
        try:
            stat = shard.stat()
            scanned = list(
                _scan(shard, stat.st_size, stat.st_mtime_ns, self.layout.count, self.layout.task)
            )
        except OSError as exc:
            scanned = [Scanned(None, problem=f"unreadable shard ({exc})")]
        declared = self.shard_lengths.get(split, [])
        expected = declared[number] if number < len(declared) else len(scanned)
        if scanned and scanned[-1].record is None:
            scanned += [scanned[-1]] * (expected - len(scanned))
        return scanned

    def episodes(self) -> list[EpisodeRef]:
        if self._listed is None:
            listed: list[EpisodeRef] = []
            numbers: dict[str, int] = {}
            for split, shard in self.shards:
                number = numbers.get(split, 0)
                numbers[split] = number + 1
                for i, scanned in enumerate(self._records(split, shard, number)):
                    listed.append(self._ref(shard, i, scanned, len(listed)))
            if not listed:
                raise DatasetError(self.root, "holds no episodes")
            self._listed = listed
        return self._listed

    def _ref(self, shard: Path, number: int, scanned: Scanned, index: int) -> EpisodeRef:
        at = RecordAt(shard, number, scanned.record or tfrecord.Record(-1, 0, 0))
        problem = EpisodeError(at.location, scanned.problem) if scanned.problem else None
        fps = self.settings.fps
        lay = self.layout
        rows = RLDSRows(at, index, scanned.steps, fps, tuple(lay.state), tuple(lay.action))
        frames = {cam: RLDSFrames(at, leaf.key) for cam, leaf in lay.cameras.items()}
        resolution = {
            cam: (leaf.shape[0], leaf.shape[1])
            for cam, leaf in lay.cameras.items()
            if len(leaf.shape) == 3 and min(leaf.shape[:2]) > 0
        }
        record = scanned.record
        signature = hashlib.sha256(
            json.dumps(
                [shard.name, number, record and [record.size, record.crc], scanned.steps]
            ).encode()
        ).hexdigest()[:16]
        return EpisodeRef(
            self.dataset_id,
            index,
            scanned.steps,
            fps,
            scanned.task,
            rows,
            frames,
            resolution,
            signature,
            problem,
        )

    def signatures(self) -> dict[int, str]:
        return {e.episode_index: e.signature for e in self.episodes()}
