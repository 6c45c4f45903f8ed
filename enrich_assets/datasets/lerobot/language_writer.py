"""Write staged language rows into a LeRobot v3.0 data file as lerobot (>= 0.6) reads them.

`language_persistent` (list of struct role, content, style, timestamp float32, camera,
tool_calls) holds every persistent row of the episode, repeated on each of its frames;
`language_events` (the same without timestamp) holds on each frame the event rows whose
timestamp equals that frame's exactly. Original columns are carried over untouched (same
arrays, same schema metadata), one row group per episode, written to a temporary file and
renamed. meta/info.json gets both features and the `say` tool, also atomically.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from enrich_assets.datasets.lerobot.language_format import (
    LANGUAGE_EVENTS,
    LANGUAGE_PERSISTENT,
    SAY_TOOL_SCHEMA,
    LanguageRow,
    column_for_style,
)
from enrich_assets.datasets.lerobot.language_staging import STAGING_DIR, read_episode
from enrich_assets.infra.files import atomic_write, file_lock

LANGUAGE_FEATURE = {"dtype": "language", "shape": [1], "names": None}
_JSON = pa.json_() if hasattr(pa, "json_") else pa.string()  # lerobot's tool_calls item type


def _row_type(with_timestamp: bool, tool_item: pa.DataType) -> pa.StructType:
    fields = [
        pa.field("role", pa.string(), nullable=False),
        pa.field("content", pa.string()),
        pa.field("style", pa.string()),
        pa.field("timestamp", pa.float32(), nullable=False),
        pa.field("camera", pa.string()),
        pa.field("tool_calls", pa.list_(tool_item)),
    ]
    return pa.struct([f for f in fields if with_timestamp or f.name != "timestamp"])


PERSISTENT_TYPE = pa.list_(_row_type(True, _JSON))
EVENTS_TYPE = pa.list_(_row_type(False, _JSON))


# (rows by module, the episode's frame timestamps, the dataset's cameras) -> blocking errors
EpisodeValidator = Callable[[Mapping[str, Sequence[LanguageRow]], np.ndarray, list[str]], list[str]]


class ShardError(ValueError):
    """This data file (shard) cannot be written; nothing of it was, the others still can be."""


class LanguageValidationError(ShardError):
    """A validator ERROR in some episode of the data file: nothing was written."""


class DamagedShardError(ShardError):
    """The data file itself cannot be read (truncated or corrupt parquet): nothing written."""


def _read(data_file: Path, columns: list[str] | None = None) -> pa.Table:
    """The data file, or DamagedShardError naming it and the cause in one line."""
    try:
        return pq.read_table(data_file, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DamagedShardError(f"{data_file}: unreadable parquet ({cause})") from exc


@dataclass(frozen=True)
class WriteSummary:
    data_file: Path
    episodes: list[int]
    persistent_rows: int  # distinct rows, before repetition over frames
    event_rows: int


def camera_keys(info: Mapping[str, Any]) -> list[str]:
    return [k for k, f in info["features"].items() if f.get("dtype") in ("video", "image")]


def _struct(row: LanguageRow, with_timestamp: bool) -> dict[str, Any]:
    out = row.to_dict()
    if not with_timestamp:
        del out["timestamp"]
    calls = row.tool_calls
    out["tool_calls"] = None if calls is None else [json.dumps(c, sort_keys=True) for c in calls]
    return out


def _column(per_frame: list[list[dict[str, Any]]], list_type: pa.ListType) -> pa.Array:
    """Build with string tool_calls items, then cast to lerobot's JSON item type."""
    storage_type = pa.list_(_row_type("timestamp" in list_type.value_type.names, pa.string()))
    return pa.array(per_frame, type=storage_type).cast(list_type)


def _episode_spans(episode_index: np.ndarray, path: Path) -> list[tuple[int, int, int]]:
    """(episode, start row, stop row) per episode; each episode must be one contiguous run."""
    starts = np.concatenate(([0], np.flatnonzero(np.diff(episode_index)) + 1))
    stops = np.append(starts[1:], len(episode_index))
    spans = [(int(episode_index[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]
    if len({ep for ep, _, _ in spans}) != len(spans):
        raise ShardError(f"{path}: an episode's rows are not contiguous")
    return spans


def language_columns(
    timestamps: np.ndarray, rows: Sequence[LanguageRow]
) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
    """Per-frame values of both columns for one episode (rows already validated)."""
    persistent = sorted(
        (r for r in rows if column_for_style(r.style) == LANGUAGE_PERSISTENT),
        key=lambda r: (r.timestamp, r.style or "", r.role, r.content or ""),
    )
    shared = [_struct(r, True) for r in persistent]
    events: dict[float, list[LanguageRow]] = defaultdict(list)
    for r in rows:
        if column_for_style(r.style) == LANGUAGE_EVENTS:
            events[r.timestamp].append(r)
    per_frame_events = []
    for t in timestamps:
        here = sorted(
            events.get(float(t), []), key=lambda r: (r.style or "", r.role, r.camera or "")
        )
        per_frame_events.append([_struct(r, False) for r in here])
    return [shared] * len(timestamps), per_frame_events


def _write_shard(
    data_file: Path,
    table: pa.Table,
    spans: list[tuple[int, int, int]],
    persistent: list[list[dict[str, Any]]],
    events: list[list[dict[str, Any]]],
) -> None:
    """`table` (without language columns) plus both columns, replacing `data_file`
    atomically: the source's compression, one row group per episode."""
    table = table.append_column(LANGUAGE_PERSISTENT, _column(persistent, PERSISTENT_TYPE))
    table = table.append_column(LANGUAGE_EVENTS, _column(events, EVENTS_TYPE))
    codec = pq.ParquetFile(data_file).metadata.row_group(0).column(0).compression
    compression = "none" if codec == "UNCOMPRESSED" else codec.lower()  # keep the source's

    def write(tmp: str) -> None:
        with pq.ParquetWriter(tmp, table.schema, compression=compression) as writer:
            for _, a, b in spans:
                writer.write_table(table.slice(a, b - a))  # one row group per episode

    atomic_write(data_file, write)


@contextmanager
def _locked(dataset_root: Path, path: Path) -> Iterator[None]:
    """An exclusive lock per dataset file: never two writers on one file. The lock files
    live in the staging folder, so the dataset itself gets no extra files."""
    name = str(path.resolve().relative_to(dataset_root.resolve())).replace(os.sep, "__")
    lock_path = dataset_root / STAGING_DIR / "locks" / f"{name}.lock"
    with file_lock(lock_path):
        yield


def write_language_columns(
    dataset_root: Path,
    data_file: Path,
    staged: Mapping[int, Mapping[str, Sequence[LanguageRow]]],
    validate: EpisodeValidator,
) -> WriteSummary:
    """Add (or replace) both language columns in `data_file` for every episode in it.

    `staged` maps episode index -> module -> rows and must cover every episode of the
    file. Every episode is validated first (`validate`, lerobot's rules, given by the
    caller); any error raises LanguageValidationError and the file is left as it was.
    """
    info = json.loads((dataset_root / "meta" / "info.json").read_text())
    cameras = camera_keys(info)
    with _locked(dataset_root, data_file):
        table = _read(data_file)
        table = table.drop_columns(
            [c for c in (LANGUAGE_PERSISTENT, LANGUAGE_EVENTS) if c in table.column_names]
        )
        spans = _episode_spans(table.column("episode_index").to_numpy(), data_file)
        all_ts = table.column("timestamp").to_numpy()
        missing = [ep for ep, _, _ in spans if ep not in staged]
        if missing:
            raise ShardError(f"{data_file}: no staged language rows for episodes {missing}")

        problems, persistent, events, counts = [], [], [], [0, 0]
        for ep, a, b in spans:
            ts = all_ts[a:b]
            errors = validate(staged[ep], ts, cameras)
            problems += [f"episode {ep}: {e}" for e in errors]
            rows = [r for module_rows in staged[ep].values() for r in module_rows]
            if not errors:
                p, e = language_columns(ts, rows)
                persistent += p
                events += e
                counts[0] += len(p[0]) if p else 0
                counts[1] += sum(map(len, e))
        if problems:
            raise LanguageValidationError(f"{data_file}: " + "; ".join(problems))

        _write_shard(data_file, table, spans, persistent, events)
    update_info(dataset_root)
    return WriteSummary(data_file, [ep for ep, _, _ in spans], *counts)


def write_from_staging(
    dataset_root: Path, data_file: Path, validate: EpisodeValidator
) -> WriteSummary:
    """`write_language_columns` with each episode's rows read from the staging tree."""
    episodes = _read(data_file, ["episode_index"]).column(0).to_numpy()
    staged = {int(ep): read_episode(dataset_root, int(ep)) for ep in np.unique(episodes)}
    return write_language_columns(dataset_root, data_file, staged, validate)


def update_info(dataset_root: Path) -> None:
    """Declare both language features and append the `say` tool, keeping other tools."""
    path = dataset_root / "meta" / "info.json"
    with _locked(dataset_root, path):
        info = json.loads(path.read_text())
        info["features"][LANGUAGE_PERSISTENT] = dict(LANGUAGE_FEATURE)
        info["features"][LANGUAGE_EVENTS] = dict(LANGUAGE_FEATURE)
        tools = info.get("tools") or []
        if not any(t.get("function", {}).get("name") == "say" for t in tools):
            tools.append(SAY_TOOL_SCHEMA)
        info["tools"] = tools

        def write(tmp: str) -> None:
            Path(tmp).write_text(json.dumps(info, indent=4, ensure_ascii=False) + "\n")

        atomic_write(path, write)


@dataclass
class WritebackOutcome:
    """Per shard (`<dataset>:<data file>`): written, refused by the validator, or damaged."""

    written: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    damaged: dict[str, str] = field(default_factory=dict)
    episodes: int = 0

    def failure_line(self) -> str:
        parts = []
        if self.refused:
            names = ", ".join(self.refused)
            parts.append(
                f"{len(self.refused)} data file(s) refused by the language validator: {names}"
            )
        if self.damaged:
            named = "; ".join(f"{shard}: {why}" for shard, why in self.damaged.items())
            parts.append(f"{len(self.damaged)} data file(s) could not be written: {named}")
        return "; ".join(parts) + f" (every other file written: {len(self.written)})"


def write_staged_datasets(
    roots: Mapping[str, Path], validate: EpisodeValidator
) -> WritebackOutcome:
    """Write the staged language rows of every dataset, shard by shard: a refused or damaged
    shard is left as it was and named; every other shard is written."""
    outcome = WritebackOutcome()
    for dataset_id, root in sorted(roots.items()):
        for data_file in sorted((root / "data").rglob("*.parquet")):
            shard = f"{dataset_id}:{data_file.relative_to(root)}"
            try:
                summary = write_from_staging(root, data_file, validate)
            except LanguageValidationError as exc:
                outcome.refused[shard] = str(exc)[:500]
                continue
            except ShardError as exc:
                outcome.damaged[shard] = str(exc)[:500]
                continue
            outcome.written.append(shard)
            outcome.episodes += len(summary.episodes)
    return outcome


# A row in, the row to keep out (the same row when it needs no change).
RowFix = Callable[[LanguageRow], LanguageRow]


def _stored_row(struct: dict[str, Any], timestamp: float) -> LanguageRow:
    """A row as read back from a language column (tool calls stored as JSON text)."""
    calls = struct.get("tool_calls")
    if calls is not None:
        calls = [json.loads(c) if isinstance(c, str) else c for c in calls]
    return LanguageRow.from_dict({**struct, "timestamp": timestamp, "tool_calls": calls})


def rewrite_language_rows(dataset_root: Path, data_file: Path, fix: RowFix) -> bool:
    """Pass every row of `data_file`'s language columns through `fix`; rewrite the file
    (atomically, as the writer does) only if some row changed. True if rewritten."""
    with _locked(dataset_root, data_file):
        table = _read(data_file)
        if not {LANGUAGE_PERSISTENT, LANGUAGE_EVENTS} <= set(table.column_names):
            return False
        stamps = table.column("timestamp").to_numpy()
        changed = False
        columns: dict[str, list[list[dict[str, Any]]]] = {}
        for name in (LANGUAGE_PERSISTENT, LANGUAGE_EVENTS):
            per_frame = []
            for t, structs in zip(stamps, table.column(name).to_pylist(), strict=True):
                frame = []
                for struct in structs or []:
                    row = _stored_row(struct, struct.get("timestamp", float(t)))
                    new = fix(row)
                    changed = changed or new != row
                    frame.append(_struct(new, name == LANGUAGE_PERSISTENT))
                per_frame.append(frame)
            columns[name] = per_frame
        if not changed:
            return False
        spans = _episode_spans(table.column("episode_index").to_numpy(), data_file)
        table = table.drop_columns([LANGUAGE_PERSISTENT, LANGUAGE_EVENTS])
        _write_shard(
            data_file, table, spans, columns[LANGUAGE_PERSISTENT], columns[LANGUAGE_EVENTS]
        )
        return True
