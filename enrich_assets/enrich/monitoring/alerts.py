"""The guide's three alert rules over `run_metrics` rows, and the state that sends each
condition once until it clears.

1. `error_rate`: a run's VLM API error rate above the threshold (default 5 %).
2. `quality_drop`: the mean quality of the frames a run newly enriched is below the
   historical mean (every earlier run of that asset and dataset, pooled per frame) by more
   than `std` (default 1) standard deviations.
3. `no_frames`: a run that had episodes to do processed nothing, or new episodes were
   registered and no frames were enriched for `hours` hours.

Pure: the asset checks apply rules 1-3 to the run they belong to; the alert sensor applies
them to the latest run of each asset and dataset, and posts what is new.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from enrich_assets.enrich.rules import RuleOutcome, Severity
from enrich_assets.infra.settings import AlertsSection

ERROR_RATE, QUALITY_DROP, NO_FRAMES = "error_rate", "quality_drop", "no_frames"
RULES = (ERROR_RATE, QUALITY_DROP, NO_FRAMES)
PIPELINE = "pipeline"  # the subject of the period rule, which no single asset owns


@dataclass(frozen=True)
class Thresholds:
    """The rules' settings (infra/settings.py `alerts:`), severities included."""

    error_rate: float = 0.05
    quality_std: float = 1.0
    no_data_hours: float = 6.0
    severity: Mapping[str, Severity] = field(
        default_factory=lambda: dict.fromkeys(RULES, Severity.WARN)
    )

    @classmethod
    def from_settings(cls, alerts: AlertsSection) -> Thresholds:
        return cls(
            error_rate=alerts.error_rate.threshold,
            quality_std=alerts.quality_drop.std,
            no_data_hours=alerts.no_frames.hours,
            severity={
                ERROR_RATE: Severity(alerts.error_rate.severity),
                QUALITY_DROP: Severity(alerts.quality_drop.severity),
                NO_FRAMES: Severity(alerts.no_frames.severity),
            },
        )


@dataclass(frozen=True)
class History:
    """Quality scores of earlier frames, pooled: how many, their mean and standard deviation."""

    n: int
    mean: float
    std: float


def quality_history(rows: Iterable[Mapping[str, Any]]) -> History | None:
    """Pool earlier runs' (quality_n, quality_mean, quality_std) into one per-frame
    distribution; None when no earlier run scored a frame."""
    n = total = squares = 0.0
    for r in rows:
        k = r.get("quality_n") or 0
        if not k or r.get("quality_mean") is None:
            continue
        mean, std = float(r["quality_mean"]), float(r.get("quality_std") or 0.0)
        n += k
        total += k * mean
        squares += k * (std * std + mean * mean)
    if not n:
        return None
    mean = total / n
    return History(int(n), mean, math.sqrt(max(squares / n - mean * mean, 0.0)))


def error_rate_outcome(row: Mapping[str, Any], t: Thresholds) -> RuleOutcome:
    rate, sent = row.get("api_error_rate"), row.get("api_requests") or 0
    severity = t.severity[ERROR_RATE]
    if rate is None or not sent:
        return RuleOutcome(ERROR_RATE, severity, True, "no API requests in this run")
    message = (
        f"{rate:.1%} of {sent} API requests failed ({row.get('api_errors', 0)} errors; "
        f"threshold {t.error_rate:.1%})"
    )
    return RuleOutcome(ERROR_RATE, severity, rate <= t.error_rate, message)


def quality_drop_outcome(
    row: Mapping[str, Any], history: History | None, t: Thresholds
) -> RuleOutcome:
    severity = t.severity[QUALITY_DROP]
    mean = row.get("quality_mean")
    if mean is None:
        return RuleOutcome(QUALITY_DROP, severity, True, "no frames scored in this run")
    if history is None:
        return RuleOutcome(QUALITY_DROP, severity, True, f"mean {mean:.3f}; no history yet")
    floor = history.mean - t.quality_std * history.std
    message = (
        f"mean quality {mean:.3f} of {row.get('quality_n')} new frames; historical mean "
        f"{history.mean:.3f} ± {history.std:.3f} over {history.n} frames (floor {floor:.3f})"
    )
    return RuleOutcome(QUALITY_DROP, severity, mean >= floor - 1e-12, message)


def no_frames_outcome(row: Mapping[str, Any], t: Thresholds) -> RuleOutcome:
    episodes, rows = row.get("episodes") or 0, row.get("rows") or 0
    passed = rows > 0 or episodes == 0
    message = f"{row.get('frames', 0)} frames ({rows} rows) written for {episodes} episodes"
    return RuleOutcome(NO_FRAMES, t.severity[NO_FRAMES], passed, message)


@dataclass(frozen=True)
class Alert:
    """One condition that holds now; `key` names it for deduplication."""

    key: str
    rule: str
    subject: str
    severity: Severity
    message: str

    def text(self) -> str:
        """A one-line Slack message."""
        return f"enrich-assets [{self.severity}] {self.rule} on {self.subject}: {self.message}"


def run_alerts(rows: Sequence[Mapping[str, Any]], t: Thresholds) -> list[Alert]:
    """Rules 1-3 on the latest run of each (asset, dataset); quality against the runs before."""
    by_subject: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        by_subject.setdefault((r["asset"], r["dataset_id"]), []).append(r)
    alerts = []
    for (asset, dataset_id), runs in sorted(by_subject.items()):
        runs = sorted(runs, key=lambda r: r["created_at"])
        latest, earlier = runs[-1], [r for r in runs[:-1] if r["run_id"] != runs[-1]["run_id"]]
        outcomes = [
            error_rate_outcome(latest, t),
            quality_drop_outcome(latest, quality_history(earlier), t),
            no_frames_outcome(latest, t),
        ]
        subject = f"{asset} ({dataset_id})"
        for o in outcomes:
            if not o.passed:
                message = f"{o.message}; run {latest['run_id']}"
                alerts.append(
                    Alert(f"{o.rule}:{asset}:{dataset_id}", o.rule, subject, o.severity, message)
                )
    return alerts


@dataclass(frozen=True)
class AlertState:
    """What the sensor remembers between ticks (its cursor)."""

    active: tuple[str, ...] = ()  # keys of conditions already sent, holding since
    registered: int | None = None  # episode partitions seen last tick (None: first tick)
    checked_at: str | None = None  # last tick (ISO 8601 UTC)
    expecting_since: str | None = None  # new episodes seen then, no frames enriched since


def expecting_since(
    state: AlertState, registered: int, last_enriched: datetime | None, now: datetime
) -> datetime | None:
    """Since when new data is expected: from the tick before new episodes were first seen
    (they were registered after it) until frames are enriched after that time. The first
    tick only records how many episodes there are."""
    since = datetime.fromisoformat(state.expecting_since) if state.expecting_since else None
    if state.registered is not None and registered > state.registered and since is None:
        since = datetime.fromisoformat(state.checked_at) if state.checked_at else now
    if since is not None and last_enriched is not None and last_enriched >= since:
        since = None
    return since


def stalled_alert(since: datetime | None, now: datetime, t: Thresholds) -> Alert | None:
    """Rule 3 over a period: new episodes registered `no_data_hours` ago, nothing enriched."""
    if since is None or now - since < timedelta(hours=t.no_data_hours):
        return None
    hours = (now - since).total_seconds() / 3600
    message = (
        f"new episodes were registered {hours:.1f} h ago and no frames have been enriched "
        f"since (limit {t.no_data_hours:g} h)"
    )
    return Alert(f"{NO_FRAMES}:{PIPELINE}", NO_FRAMES, PIPELINE, t.severity[NO_FRAMES], message)


def due(active: Iterable[str], current: Sequence[Alert]) -> list[Alert]:
    """The conditions to send now: those holding that were not holding at the last tick. A
    condition that clears leaves `active`, so it is sent again if it recurs."""
    sent = set(active)
    return [a for a in current if a.key not in sent]
