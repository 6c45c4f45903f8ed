"""What `enrich-assets doctor` found in a dataset, whatever its format: facts, problems with
the fix each one suggests, and the verdict (usable, partly, not at all) as an exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]
SHOWN_EPISODES = 12  # episode indices listed per finding before "..."


@dataclass(frozen=True)
class Finding:
    """One problem. An error with no episodes makes the whole dataset unusable; an error with
    episodes makes those episodes unusable; a warning leaves them usable (other tools, or some
    assets, may still choke on it)."""

    severity: Severity
    kind: str  # short stable name, e.g. "video-folder", "off-grid-timestamps"
    problem: str  # one line, naming the file
    fix: str  # one or more lines: what to change, or what to put in the override file
    episodes: tuple[int, ...] = ()


@dataclass
class Diagnosis:
    target: str
    format: str  # e.g. "LeRobot v3.0"; "unknown" when no inspector claims the target
    episodes: tuple[int, ...] = ()  # every episode the metadata lists
    facts: dict[str, str] = field(default_factory=dict)  # what was found, for people
    findings: list[Finding] = field(default_factory=list)

    @property
    def bad_episodes(self) -> set[int]:
        return {e for f in self.findings if f.severity == "error" for e in f.episodes}

    @property
    def fatal(self) -> bool:
        return any(f.severity == "error" and not f.episodes for f in self.findings)

    def exit_code(self) -> int:
        """0: every episode usable; 1: some are not; 2: none is."""
        bad = self.bad_episodes
        if self.fatal or not self.episodes or bad >= set(self.episodes):
            return 2
        return 1 if bad else 0


def merge(findings: list[Finding]) -> list[Finding]:
    """Per-episode findings of one kind and fix as one finding listing the episodes (the
    first one's problem stands for them all)."""
    merged: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        key = (f.severity, f.kind, f.fix)
        if key in merged:
            old = merged[key]
            merged[key] = Finding(
                old.severity, old.kind, old.problem, old.fix, (*old.episodes, *f.episodes)
            )
        else:
            merged[key] = f
    return list(merged.values())


def _episodes(episodes: tuple[int, ...], total: int) -> str:
    shown = ", ".join(map(str, episodes[:SHOWN_EPISODES]))
    more = ", ..." if len(episodes) > SHOWN_EPISODES else ""
    return f"{len(episodes)} of {total} episodes ({shown}{more})"


VERDICTS = {
    0: "usable: every episode can be processed",
    1: "partly usable: the episodes named above fail, the others can be processed",
    2: "not usable: no episode can be processed",
}


def render_text(d: Diagnosis) -> str:
    lines = [f"{d.target}: {d.format}"]
    lines += [f"  {key}: {value}" for key, value in d.facts.items()]
    order = sorted(d.findings, key=lambda f: (f.severity != "error", bool(f.episodes)))
    for f in order:
        scope = _episodes(f.episodes, len(d.episodes)) if f.episodes else "dataset"
        lines.append(f"{f.severity.upper()} [{f.kind}] {scope}: {f.problem}")
        lines += [
            f"    fix: {line}" if i == 0 else f"         {line}"
            for i, line in enumerate(f.fix.splitlines())
        ]
    if not d.findings:
        lines.append("no problems found")
    code = d.exit_code()
    lines.append(f"verdict: {VERDICTS[code]} (exit {code})")
    return "\n".join(lines)


def render_json(d: Diagnosis) -> str:
    return json.dumps(
        {
            "target": d.target,
            "format": d.format,
            "episodes": list(d.episodes),
            "facts": d.facts,
            "findings": [asdict(f) for f in d.findings],
            "bad_episodes": sorted(d.bad_episodes),
            "exit_code": d.exit_code(),
        },
        indent=1,
    )


@dataclass(frozen=True)
class Inspector:
    """A format's doctor: `claims` says cheaply whether a target (path or URL) is of this
    format; `inspect` diagnoses it, honouring an explicit override file when given."""

    name: str
    claims: Callable[[str], bool]
    inspect: Callable[[str, Path | None], Diagnosis]
