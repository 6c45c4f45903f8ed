"""The golden-set regression gate: a pipeline version may not lose what an earlier one won.

A metric passes when it reaches its floor. Once any earlier version passed it, a version
scoring more than the metric's tolerance below the best earlier score is rejected. Metrics
that never passed, or that the current version did not measure, cannot reject it.
Floors and tolerances live in schemas/golden.yaml `gate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from enrich_assets.enrich.rules import RuleOutcome, Severity
from enrich_assets.infra.schema import load_yaml

RULE = "golden_set_regression"


@dataclass(frozen=True)
class MetricGate:
    floor: float  # the metric passes at or above this
    tolerance: float  # how far below its best earlier score a passed metric may fall


@dataclass(frozen=True)
class Regression:
    metric: str
    best: float
    best_version: str
    current: float
    tolerance: float

    @property
    def drop(self) -> float:
        return self.best - self.current

    def describe(self) -> str:
        return (
            f"{self.metric} fell from {self.best:.3f} (version {self.best_version}) to "
            f"{self.current:.3f}: -{self.drop:.3f}, tolerance {self.tolerance:.3f}"
        )


def load_gates() -> dict[str, MetricGate]:
    """schemas/golden.yaml `gate`: metric -> floor and tolerance."""
    gates = load_yaml("golden.yaml")["gate"]
    try:
        return {name: MetricGate(**values) for name, values in gates.items()}
    except TypeError as exc:
        raise ValueError(
            f"schemas/golden.yaml gate: each metric needs floor and tolerance ({exc})"
        ) from exc


def find_regressions(
    history: Iterable[tuple[str, str, float | None]],
    version: str,
    scores: Mapping[str, float | None],
    gates: Mapping[str, MetricGate],
) -> list[Regression]:
    """Gated metrics the current `version` lost; `history` is (version, metric, value) of
    earlier scorings (rows of `version` itself are ignored, so re-scoring is harmless)."""
    best: dict[str, tuple[float, str]] = {}
    for earlier, metric, value in history:
        if earlier == version or value is None:
            continue
        if metric not in best or value > best[metric][0]:
            best[metric] = (value, earlier)
    found = []
    for metric, gate in gates.items():
        current = scores.get(metric)
        if metric not in best or current is None:
            continue
        value, earlier = best[metric]
        if value >= gate.floor and value - current > gate.tolerance + 1e-9:
            found.append(Regression(metric, value, earlier, current, gate.tolerance))
    return found


def check_golden_regression(
    history: Iterable[tuple[str, str, float | None]],
    version: str,
    scores: Mapping[str, float | None],
    gates: Mapping[str, MetricGate],
) -> RuleOutcome:
    """ERROR when the version regresses a passed metric; the message names each and by how much."""
    history = list(history)
    regressions = find_regressions(history, version, scores, gates)
    if regressions:
        message = "; ".join(r.describe() for r in regressions)
        return RuleOutcome(RULE, Severity.ERROR, False, message)
    earlier = len({v for v, _, _ in history if v != version})
    unmeasured = sorted(m for m in gates if scores.get(m) is None)
    message = f"no regression against {earlier} earlier version(s)"
    if unmeasured:
        message += f"; not measured: {', '.join(unmeasured)}"
    return RuleOutcome(RULE, Severity.ERROR, True, message)
