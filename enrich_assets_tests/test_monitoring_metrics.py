"""The run-metric figures and the alert rules, as pure functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from enrich_assets.enrich.monitoring.alerts import (
    Alert,
    AlertState,
    Thresholds,
    due,
    error_rate_outcome,
    expecting_since,
    no_frames_outcome,
    quality_drop_outcome,
    quality_history,
    run_alerts,
    stalled_alert,
)
from enrich_assets.enrich.monitoring.metrics import RunMeter, count_frames, metrics_row, plotted
from enrich_assets.enrich.rules import Severity
from enrich_assets.models.vlm.ledger import LedgerEntry


def entry(
    status: str, latency: float = 0.5, cost: float | None = 0.001, model: str = "m"
) -> LedgerEntry:
    return LedgerEntry("t", "run", "ai_caption", "d:ep000000", "caption", model, status, 10, 5,
                       latency, 1, cost, None)  # fmt: skip


def test_frames_are_distinct_camera_positions() -> None:
    rows = [
        {"camera": "a", "frame_index": 0},
        {"camera": "a", "frame_index": 0},  # a second detection row of the same keyframe
        {"camera": "b", "frame_index": 0},
        {"camera": "a", "tech_timestamp": 0.5},  # a language annotation
    ]
    assert count_frames(rows) == 3
    assert count_frames([{"camera": "a", "tech_length": 9}]) == 0  # episode-level rows


def test_metrics_row_figures() -> None:
    meter = RunMeter()
    meter.add_rows([{"camera": "a", "frame_index": i, "tech_quality_score": s}
                    for i, s in enumerate([0.25, 0.45, 0.65, 0.85])])  # fmt: skip
    meter.add_batches("clip", [1.0, 2.0, 3.0, 4.0, 100.0])
    # 8 sent (2 failed), 1 cached and 1 refused: neither sent nor errors, not batches either
    calls = [entry("ok")] * 5 + [entry("quarantined")] + [entry("failed", cost=None)] * 2
    meter.add_calls([*calls, entry("cached", cost=0.0), entry("refused", cost=0.0)])
    row = metrics_row("ai_caption", meter, episodes=2, not_written=1, seconds=1.23456)

    assert (row["episodes"], row["episodes_not_written"], row["rows"], row["frames"]) == (
        2,
        1,
        4,
        4,
    )
    assert row["api_requests"] == 8 and row["api_errors"] == 2 and row["api_error_rate"] == 0.25
    assert row["cost_usd"] == pytest.approx(0.006) and row["cost_per_frame_usd"] == pytest.approx(
        0.0015
    )
    by_model = json.loads(row["latency_by_model"])
    assert by_model["clip"] == {"batches": 5, "p50_s": 3.0, "p95_s": pytest.approx(80.8)}
    assert by_model["m"]["batches"] == 8 and row["batches"] == 13
    assert row["models"] == "clip,m"
    assert row["latency_p50_s"] == pytest.approx(np.percentile([1, 2, 3, 4, 100] + [0.5] * 8, 50))
    assert row["quality_mean"] == 0.55 and row["quality_std"] == pytest.approx(
        np.std([0.25, 0.45, 0.65, 0.85])
    )
    assert row["quality_p50"] == 0.55
    assert json.loads(row["quality_histogram"]) == [0, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert "quality_mean" in plotted(row) and "api_error_rate" in plotted(row)


def test_a_run_without_models_or_scores_leaves_those_figures_unset() -> None:
    row = metrics_row("keyframes", RunMeter(), episodes=3, not_written=3, seconds=0.1)
    assert row["frames"] == 0 and row["api_error_rate"] is None and row["quality_mean"] is None
    assert (
        row["latency_p50_s"] is None and row["cost_per_frame_usd"] is None and row["models"] is None
    )
    assert set(plotted(row)) == {"frames"}  # a null would break the UI's plot


def test_quality_history_pools_runs_as_one_frame_distribution() -> None:
    rng = np.random.default_rng(0)
    runs = [rng.uniform(0, 1, n) for n in (5, 40, 12)]
    rows = [{"quality_n": len(r), "quality_mean": r.mean(), "quality_std": r.std()} for r in runs]
    rows.append({"quality_n": 0, "quality_mean": None, "quality_std": None})  # a run with no scores
    pooled = quality_history(rows)
    everything = np.concatenate(runs)
    assert pooled.n == 57
    assert pooled.mean == pytest.approx(everything.mean())
    assert pooled.std == pytest.approx(everything.std())
    assert quality_history([]) is None


def test_rules() -> None:
    t = Thresholds()
    assert not error_rate_outcome({"api_error_rate": 0.06, "api_requests": 50}, t).passed
    assert error_rate_outcome({"api_error_rate": 0.05, "api_requests": 20}, t).passed
    assert error_rate_outcome({"api_error_rate": None, "api_requests": 0}, t).passed

    history = quality_history([{"quality_n": 100, "quality_mean": 0.8, "quality_std": 0.1}])
    low = quality_drop_outcome({"quality_mean": 0.69, "quality_n": 10}, history, t)
    assert not low.passed and "0.690" in low.message and "0.800" in low.message
    assert quality_drop_outcome({"quality_mean": 0.71, "quality_n": 10}, history, t).passed
    assert quality_drop_outcome(
        {"quality_mean": 0.1, "quality_n": 10}, None, t
    ).passed  # no history
    strict = Thresholds(quality_std=0.05)
    assert not quality_drop_outcome({"quality_mean": 0.79, "quality_n": 10}, history, strict).passed

    assert not no_frames_outcome({"episodes": 3, "rows": 0, "frames": 0}, t).passed
    assert no_frames_outcome({"episodes": 3, "rows": 3, "frames": 0}, t).passed  # the manifest
    assert no_frames_outcome({"episodes": 0, "rows": 0, "frames": 0}, t).passed


def test_run_alerts_judge_the_latest_run_of_each_asset_and_dataset() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def row(asset: str, hour: int, **values: float) -> dict:
        base = {"asset": asset, "dataset_id": "d", "run_id": f"r{hour}", "episodes": 1, "rows": 5,
                "frames": 5, "api_requests": 0, "api_error_rate": None, "quality_n": 0,
                "quality_mean": None, "quality_std": None}  # fmt: skip
        return {**base, "created_at": t0 + timedelta(hours=hour), **values}

    rows = [
        row("ai_caption", 1, api_requests=10, api_error_rate=0.5),  # old and bad: superseded
        row("ai_caption", 2, api_requests=10, api_error_rate=0.0),
        row("tech_quality", 1, quality_n=100, quality_mean=0.8, quality_std=0.05),
        row("tech_quality", 2, quality_n=10, quality_mean=0.5, quality_std=0.05),
        row("keyframes", 3, rows=0, frames=0),
    ]
    alerts = run_alerts(rows, Thresholds())
    assert [a.key for a in alerts] == ["no_frames:keyframes:d", "quality_drop:tech_quality:d"]
    assert "run r2" in alerts[1].message


def test_expectation_and_the_period_rule() -> None:
    t = Thresholds(no_data_hours=2)
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    first = AlertState()
    assert expecting_since(first, 10, None, now) is None  # the first tick only counts
    seen = AlertState(registered=10, checked_at=(now - timedelta(minutes=1)).isoformat())
    assert expecting_since(seen, 10, None, now) is None
    since = expecting_since(seen, 12, None, now)
    assert since == now - timedelta(minutes=1)  # registered after the previous tick
    # enriched between that tick and this one: not expecting any more
    assert expecting_since(seen, 12, now - timedelta(seconds=30), now) is None
    assert stalled_alert(since, now + timedelta(hours=1), t) is None
    stalled = stalled_alert(since, now + timedelta(hours=3), t)
    assert stalled is not None and stalled.key == "no_frames:pipeline"
    waiting = AlertState(
        registered=12, checked_at=now.isoformat(), expecting_since=since.isoformat()
    )
    assert expecting_since(waiting, 12, None, now + timedelta(hours=3)) == since
    assert expecting_since(waiting, 12, now + timedelta(hours=3), now + timedelta(hours=3)) is None


def test_due_sends_each_condition_once_until_it_clears() -> None:
    a = Alert("error_rate:x:d", "error_rate", "x (d)", Severity.ERROR, "m")
    b = Alert("no_frames:pipeline", "no_frames", "pipeline", Severity.ERROR, "m")
    assert due([], [a, b]) == [a, b]
    assert due([a.key], [a, b]) == [b]
    assert due([a.key, b.key], [a, b]) == []
    assert due([b.key], [a]) == [a]  # b cleared; a is new


def test_thresholds_from_settings(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from enrich_assets.infra.settings import SettingsError, load_settings

    path = tmp_path / "enrich-assets.yaml"
    path.write_text(
        "alerts:\n  error_rate: {severity: WARN, threshold: 0.1}\n"
        "  quality_drop: {std: 2}\n  no_frames: {hours: 3, severity: WARN}\n"
    )
    monkeypatch.setenv("ENRICH_SETTINGS", str(path))
    t = Thresholds.from_settings(load_settings(tmp_path).alerts)
    assert (t.error_rate, t.quality_std, t.no_data_hours) == (0.1, 2.0, 3.0)
    assert t.severity == {"error_rate": "WARN", "quality_drop": "WARN", "no_frames": "WARN"}

    path.write_text("alerts:\n  error_rate: {threshhold: 0.1}\n")
    with pytest.raises(SettingsError, match=r"enrich-assets.yaml:2: alerts.error_rate.threshhold: "
                       r"unknown setting \(known: severity, threshold\)"):  # fmt: skip
        load_settings(tmp_path)
    path.write_text("alerts:\n  no_frames: {severity: INFO}\n")
    with pytest.raises(SettingsError, match="alerts.no_frames.severity"):
        load_settings(tmp_path)
