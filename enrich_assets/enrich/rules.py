"""Validator rule outcomes: one row per (episode, rule), whatever asset produced it.

Every enrichment module exposes pure `check_*` functions that return `RuleOutcome`s; the
Dagster layer stores them in the catalog and summarises them as asset checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "ERROR"  # quarantines the episode: downstream assets skip it
    WARN = "WARN"


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    severity: Severity
    passed: bool
    message: str = ""


def outcome(rule: str, failures: list[str], severity: Severity = Severity.ERROR) -> RuleOutcome:
    """A rule passes when it found no failures; the message lists the first few."""
    shown = "; ".join(failures[:5]) + (f" (+{len(failures) - 5} more)" if len(failures) > 5 else "")
    return RuleOutcome(rule, severity, not failures, shown)
