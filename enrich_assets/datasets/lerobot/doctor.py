"""The doctor for LeRobot datasets: read the dataset through the same reader (and layout
override) the pipeline uses, look at every episode's files, probe the video streams, and say
what is wrong and how to fix it, in the dataset or in `enrich-layout.yaml`.

Episode errors are what makes an episode fail in the pipeline (a missing or unreadable file,
rows or video shorter than the metadata says, timestamps more than half a frame off the
frame grid, so frames cannot be matched). Warnings leave the episode usable here but trip
other tools (LeRobot's own loader checks timestamps to 1e-4 s and trusts codec labels) or
some assets (trajectory diversity and the curated export read `observation.state` and
`action`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from enrich_assets.datasets.diagnosis import Diagnosis, Finding, Inspector, merge
from enrich_assets.datasets.episode import EpisodeRef, read_frames
from enrich_assets.datasets.errors import DatasetError, EpisodeError
from enrich_assets.datasets.lerobot.layout import LAYOUT_FILE, layout_path, resolve
from enrich_assets.datasets.lerobot.reader import (
    LeRobotReader,
    _relative,
    read_info,
)
from enrich_assets.datasets.video import VideoInfo, decode_at, probe

TIMESTAMP_TOLERANCE_S = 1e-4  # LeRobot's own check (`check_timestamps_sync`)
REQUIRED_COLUMNS = ("timestamp", "frame_index", "episode_index")
# names other tools use for what LeRobot calls observation.state and action
ALIASES = {
    "state": "observation.state",
    "states": "observation.state",
    "qpos": "observation.state",
    "joint_states": "observation.state",
    "robot_state": "observation.state",
    "actions": "action",
    "act": "action",
}
CODEC_NAMES = {
    "libsvtav1": "av1",
    "libaom-av1": "av1",
    "libdav1d": "av1",
    "libx264": "h264",
    "avc1": "h264",
    "avc": "h264",
    "h265": "hevc",
    "libx265": "hevc",
    "vp09": "vp9",
}


def _codec(label: str) -> str:
    return CODEC_NAMES.get(label.lower(), label.lower())


def claims(target: str) -> bool:
    return (Path(target) / "meta" / "info.json").is_file()


def inspect(target: str, layout: Path | None) -> Diagnosis:
    root = Path(target)
    try:
        info = read_info(root)
    except DatasetError as exc:
        return Diagnosis(target, "LeRobot", findings=[_fatal("info-json", exc)])
    override = layout_path(root, layout)
    resolve(info, override)  # a bad override file is the user's error: raised, one line
    version = str(info.get("codebase_version"))
    try:
        reader = LeRobotReader(root, "doctor", override)
        refs = reader.episodes()
    except DatasetError as exc:
        return Diagnosis(target, f"LeRobot {version}", findings=[_fatal("metadata", exc)])
    d = Diagnosis(target, f"LeRobot {version}", tuple(r.episode_index for r in refs))
    d.facts["layout override"] = str(override) if override else f"none ({LAYOUT_FILE} absent)"
    frames = sum(r.length for r in refs)
    d.facts["episodes"] = f"{len(refs)} listed, {frames} frames at {reader.fps:g} fps"
    findings = [*_feature_names(reader, root), *_totals(info, refs, frames)]
    findings += _columns(reader, refs)
    probes: dict[Path, VideoInfo | EpisodeError] = {}
    for ref in refs:
        findings += _episode(reader, ref, probes)
    findings += _cameras(reader, refs, probes, d.facts)
    d.findings = merge(findings)
    return d


LEROBOT = Inspector("LeRobot v2.1/v3.0 (meta/info.json)", claims, inspect)


def _fatal(kind: str, exc: DatasetError) -> Finding:
    return Finding("error", kind, str(exc), "repair the file named (no episode can be read)")


def _layout_hint(root: Path, lines: list[str]) -> str:
    return "\n".join([f"or read it as it is, with {root / LAYOUT_FILE} holding:", *lines])


def _feature_names(reader: LeRobotReader, root: Path) -> list[Finding]:
    odd = {}
    for name, feature in reader.info["features"].items():
        if feature.get("dtype") in ("video", "image") and not name.startswith(
            "observation.images."
        ):
            odd[name] = f"observation.images.{name.split('.')[-1]}"
        elif name in ALIASES and ALIASES[name] not in reader.info["features"]:
            odd[name] = ALIASES[name]
    if not odd:
        return []
    names = ", ".join(odd)
    problem = (
        f"{root / 'meta/info.json'} names features {names}, not as LeRobot does "
        f"({', '.join(dict.fromkeys(odd.values()))}); trajectory assets and the curated export "
        "read observation.state and action"
    )
    mapping = [f"  {reader.on_disk(k)}: {v}" for k, v in odd.items()]
    fix = "rename them in meta/info.json (and the data files' columns)\n" + _layout_hint(
        root, ["features:", *mapping]
    )
    return [Finding("warning", "feature-names", problem, fix)]


def _totals(info: dict, refs: list[EpisodeRef], frames: int) -> list[Finding]:
    said = (info.get("total_episodes"), info.get("total_frames"))
    if said in ((len(refs), frames), (None, None)):
        return []
    return [
        Finding(
            "warning",
            "info-totals",
            f"meta/info.json says {said[0]} episodes, {said[1]} frames; the episode metadata "
            f"lists {len(refs)} episodes, {frames} frames",
            "set total_episodes and total_frames in meta/info.json to the episode metadata's",
        )
    ]


def _columns(reader: LeRobotReader, refs: list[EpisodeRef]) -> list[Finding]:
    """The data files' columns against info.json's features (first readable data file)."""
    files = [r.table.data_file for r in refs if r.table.data_file.is_file()]
    try:
        names = set(pq.read_schema(files[0]).names) if files else None
    except (pa.ArrowInvalid, OSError):
        names = None  # the episodes of that file say it is unreadable
    if names is None:
        return []
    features = [k for k, f in reader.info["features"].items() if f.get("dtype") != "video"]
    missing = [k for k in features if reader.on_disk(k) not in names]
    shown = _relative(reader.root, files[0])
    required = [k for k in REQUIRED_COLUMNS if k in missing]
    if required:
        problem = f"{shown} lacks the column {reader.on_disk(required[0])!r} the pipeline needs"
        return [Finding("error", "data-columns", problem, "write it (LeRobot datasets have it)")]
    if not missing:
        return []
    problem = (
        f"{shown} has no column {', '.join(map(reader.on_disk, missing))} that meta/info.json "
        f"declares (it has {', '.join(sorted(names))})"
    )
    fix = "map each declared feature to its column: `features:` in " + LAYOUT_FILE
    return [Finding("warning", "data-columns", problem, fix)]


def _episode(
    reader: LeRobotReader, ref: EpisodeRef, probes: dict[Path, VideoInfo | EpisodeError]
) -> list[Finding]:
    index = (ref.episode_index,)
    if ref.problem is not None:
        return [Finding("error", "episode-files", str(ref.problem), _RESTORE, index)]
    missing = [ref.table.data_file] if not ref.table.data_file.is_file() else []
    missing += [v.path for v in ref.frames.values() if not v.path.is_file()]
    if missing:
        return [_missing(reader, path, ref.episode_index) for path in missing]
    try:
        table = read_frames(ref, REQUIRED_COLUMNS)
    except EpisodeError as exc:
        return [Finding("error", "frame-count", str(exc), _RESTORE, index)]
    timestamps = table.column("timestamp").to_numpy().astype(np.float64)
    findings = _grid(reader, ref, timestamps, table.column("frame_index").to_numpy())
    for camera, video in ref.frames.items():
        if video.path not in probes:
            try:
                probes[video.path] = probe(video.path)
            except EpisodeError as exc:
                probes[video.path] = exc
        found = probes[video.path]
        if isinstance(found, EpisodeError):
            findings.append(Finding("error", "unreadable-video", str(found), _RESTORE, index))
        elif video.from_timestamp + timestamps[-1] > found.duration_s + 1.0 / ref.fps:
            problem = (
                f"{_relative(reader.root, video.path)}: episode {ref.episode_index} ({camera}) "
                f"needs t={video.from_timestamp + timestamps[-1]:.3f}s but the video lasts "
                f"{found.duration_s:.3f}s"
            )
            findings.append(Finding("error", "short-video", problem, _RESTORE, index))
    return findings


_RESTORE = "restore the file from the source, or remove the episode from the metadata"


def _grid(
    reader: LeRobotReader, ref: EpisodeRef, timestamps: np.ndarray, frame_index: np.ndarray
) -> list[Finding]:
    """Timestamps against frame_index / fps: more than half a frame off, frames cannot be
    matched (error); more than LeRobot's tolerance, its loader refuses them (warning)."""
    off = np.abs(timestamps - frame_index / ref.fps)
    worst = int(np.argmax(off)) if len(off) else 0
    if not len(off) or off[worst] <= TIMESTAMP_TOLERANCE_S:
        return []
    severity = "error" if off[worst] > 0.5 / ref.fps else "warning"
    problem = (
        f"{_relative(reader.root, ref.table.data_file)}: episode {ref.episode_index}'s "
        "timestamps are "
        f"off the frame grid (frame {int(frame_index[worst])} at {timestamps[worst]:.4f}s, "
        f"frame_index / fps = {frame_index[worst] / ref.fps:.4f}s; "
        f"{int((off > TIMESTAMP_TOLERANCE_S).sum())} frames off by more than "
        f"{TIMESTAMP_TOLERANCE_S:g}s)"
    )
    fix = "rewrite the timestamp column as frame_index / fps (or fix info.json's fps)"
    return [Finding(severity, "off-grid-timestamps", problem, fix, (ref.episode_index,))]


def _missing(reader: LeRobotReader, path: Path, episode: int) -> Finding:
    """A missing file; when its folder was renamed (`video/` for `videos/`), say so."""
    root = reader.root.resolve()
    relative = path.relative_to(root)
    kind = "data" if path.suffix == ".parquet" else "video"
    template = reader.info[f"{kind}_path"]
    first = relative.parts[0]
    tail = Path(*relative.parts[1:])
    moved = [
        d.name
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name != first and (d / tail).is_file()
    ]
    if moved and template.startswith(f"{first}/"):
        alt = moved[0]
        problem = (
            f"{relative} is missing: the {kind} files are under {alt}/ on disk but the "
            f"{kind}_path template says {first}/ ({template})"
        )
        new = alt + template[len(first) :]
        fix = f"rename {alt}/ to {first}/\n" + _layout_hint(reader.root, [f'{kind}_path: "{new}"'])
        return Finding("error", f"{kind}-folder", problem, fix, (episode,))
    problem = f"the metadata lists episode {episode} but its {kind} file {relative} is missing"
    return Finding("error", f"missing-{kind}-file", problem, _RESTORE, (episode,))


def _cameras(
    reader: LeRobotReader,
    refs: list[EpisodeRef],
    probes: dict[Path, VideoInfo | EpisodeError],
    facts: dict[str, str],
) -> list[Finding]:
    """Per camera: the codec as labelled vs as the stream is; the first frame decoded."""
    findings = []
    for camera in reader.cameras:
        feature = reader.info["features"][camera]
        label = (feature.get("info") or {}).get("video.codec")
        label = reader.layout.codecs.get(camera, label)
        videos = [r.frames[camera] for r in refs if camera in r.frames]
        streams = {
            v.path: probes[v.path] for v in videos if isinstance(probes.get(v.path), VideoInfo)
        }
        if not streams:
            facts[f"camera {camera}"] = f"labelled {label}; no readable video file"
            continue
        path, first = next(iter(streams.items()))
        codecs = sorted({s.codec for s in streams.values()})
        seconds = sum(s.duration_s for s in streams.values())
        decoded = _decodes(
            path, next(v for v in videos if v.path == path).from_timestamp, first.fps
        )
        facts[f"camera {camera}"] = (
            f"labelled {label or '(no label)'}, stream {'/'.join(codecs)} "
            f"{first.width}x{first.height} at {first.fps:g} fps; {len(streams)} video file(s), "
            f"~{round(seconds * first.fps)} frames; first frame {decoded}"
        )
        wrong = [c for c in codecs if label and _codec(label) != _codec(c)]
        if wrong:
            key = reader.on_disk(camera)
            problem = (
                f"{camera}: labelled {label!r} (meta/info.json features.{key}.info.video.codec) "
                f"but the stream of {_relative(reader.root, path)} is {wrong[0]!r}"
            )
            fix = f'set features.{key}.info["video.codec"] to "{wrong[0]}" in meta/info.json\n'
            fix += _layout_hint(reader.root, ["codecs:", f"  {camera}: {wrong[0]}"])
            findings.append(Finding("warning", "codec-label", problem, fix))
    return findings


def _decodes(path: Path, at: float, fps: float) -> str:
    try:
        image = decode_at(path, [at], fps or 30.0)[0]
    except EpisodeError as exc:
        return f"does not decode ({exc.problem})"
    return f"decodes ({image.shape[1]}x{image.shape[0]})"
