"""The `enrichment_alerts` sensor end to end: a real Dagster instance, `run_metrics` rows in
the real catalog, ticks evaluated as the daemon does, and a real HTTP receiver on 127.0.0.1
standing in for the Slack webhook. Each condition is posted once, not again while it holds,
and again after it cleared and recurred; a failed post is retried; the URL is never stored."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from enrich_assets.app.run_driver import dagster_instance
from enrich_assets.defs.partitions import episodes
from enrich_assets.enrich.monitoring.metrics import METRICS_TABLE, RunMeter, metrics_row
from enrich_assets.infra.schema import to_table
from enrich_assets.infra.webhook import WebhookError, post_json
from enrich_assets.models.vlm.ledger import LedgerEntry
from enrich_assets.store.catalog import Catalog

SECRET = "T000-B000-SECRETxyz123"
NO_DATA_HOURS = 0.0005  # 1.8 s


class Receiver:
    """A webhook on 127.0.0.1: records every JSON body, answers with `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[int, dict]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((receiver.status, body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/{SECRET}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[str]:
        return [body["text"] for status, body in self.received if status == 200]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _entry(status: str) -> LedgerEntry:
    return LedgerEntry(datetime.now(UTC).isoformat(), "r", "ai_caption", "d:ep000000", "caption",
                       "gpt-x", status, 100, 20, 0.2, 1, 0.001, None)  # fmt: skip


def _write_run(catalog: Catalog, asset: str, run_id: str, meter: RunMeter, episodes: int) -> None:
    """A run's row, as the asset step writes it (defs/run_metrics.py)."""
    row = {
        "dataset_id": "d",
        "episode_index": None,
        **metrics_row(asset, meter, episodes, 0, 1.0),
        "code_version": "v",
        "run_id": run_id,
        "created_at": datetime.now(UTC),
    }
    catalog.write(METRICS_TABLE, "d", f"{asset}-{run_id}", to_table(METRICS_TABLE, [row]))


def _caption_run(failed: int) -> RunMeter:
    meter = RunMeter()
    meter.add_rows([{"camera": "c", "frame_index": i} for i in range(10)])
    meter.add_calls([_entry("failed")] * failed + [_entry("ok")] * (10 - failed))
    return meter


def _quality_run(score: float, n: int) -> RunMeter:
    meter = RunMeter()
    meter.add_rows([{"camera": "c", "frame_index": i, "tech_quality_score": score + 0.01 * (i % 3)}
                    for i in range(n)])  # fmt: skip
    return meter


def test_alerts_are_posted_once_per_condition_until_it_clears(
    settings, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions
    from enrich_assets.defs.alerts import enrichment_alerts

    settings_file = tmp_path / "enrich-assets.yaml"
    settings_file.write_text(f"alerts:\n  no_frames: {{hours: {NO_DATA_HOURS}}}\n")
    monkeypatch.setenv("ENRICH_SETTINGS", str(settings_file))
    monkeypatch.setenv("ENRICH_ALERT_WEBHOOK_URL", receiver.url)
    defs = build_definitions()
    instance = dagster_instance(settings)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    cursor: list[str | None] = [None]

    def tick() -> list[str]:
        """One evaluation as the daemon runs it; the texts delivered so far."""
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor[0], definitions=defs, resources=defs.resources
        )
        data = enrichment_alerts.evaluate_tick(context)
        assert not data.run_requests
        cursor[0] = data.cursor
        assert SECRET not in (data.cursor or "")  # the URL is never stored
        return receiver.delivered()

    assert tick() == []  # nothing has run

    # rule 1: 20 % of a run's API requests failed
    _write_run(catalog, "ai_caption", "r1", _caption_run(failed=2), 2)
    sent = tick()
    assert len(sent) == 1
    assert sent[0].startswith("enrich-assets [ERROR] error_rate on ai_caption (d): 20.0% of 10")
    assert "run r1" in sent[0]
    assert len(tick()) == 1  # still holding: not sent again
    _write_run(catalog, "ai_caption", "r2", _caption_run(failed=0), 2)
    assert len(tick()) == 1  # cleared
    _write_run(catalog, "ai_caption", "r3", _caption_run(failed=3), 2)
    sent = tick()
    assert len(sent) == 2 and "30.0%" in sent[1] and "run r3" in sent[1]  # recurred: sent again

    # rule 2: new frames' mean quality more than one SD below history; the first post fails
    _write_run(catalog, "tech_quality", "q1", _quality_run(0.8, 60), 6)
    assert len(tick()) == 2  # a first run has no history to fall below
    _write_run(catalog, "tech_quality", "q2", _quality_run(0.5, 20), 2)
    receiver.status = 500
    assert len(tick()) == 2 and receiver.received[-1][0] == 500  # tried, refused
    receiver.status = 200
    sent = tick()  # retried on the next tick
    assert len(sent) == 3
    assert sent[2].startswith("enrich-assets [WARN] quality_drop on tech_quality (d): mean quality")
    assert len(tick()) == 3

    # rule 3: a run that wrote nothing for its episodes
    _write_run(catalog, "keyframes", "k1", RunMeter(), 4)
    sent = tick()
    assert (
        len(sent) == 4 and "no_frames on keyframes (d): 0 frames (0 rows) written for 4" in sent[3]
    )

    # rule 3 over a period: the sensor registered new episodes, nothing enriched since
    instance.add_dynamic_partitions(episodes.name, ["d:ep000000", "d:ep000001"])
    assert len(tick()) == 4  # expecting data from now on
    time.sleep(NO_DATA_HOURS * 3600 + 0.5)
    sent = tick()
    assert len(sent) == 5 and "no_frames on pipeline: new episodes were registered" in sent[4]
    assert len(tick()) == 5
    frames = RunMeter()
    frames.add_rows([{"camera": "c", "frame_index": 0}])
    _write_run(catalog, "keyframes", "k2", frames, 2)  # frames enriched: both no_frames clear
    assert len(tick()) == 5
    instance.add_dynamic_partitions(episodes.name, ["d:ep000002"])
    assert len(tick()) == 5
    time.sleep(NO_DATA_HOURS * 3600 + 0.5)
    sent = tick()
    assert len(sent) == 6 and "no_frames on pipeline" in sent[5]

    state = json.loads(cursor[0])
    assert sorted(state["active"]) == [
        "error_rate:ai_caption:d",
        "no_frames:pipeline",
        "quality_drop:tech_quality:d",
    ]


def test_without_a_webhook_nothing_is_marked_sent(
    settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    from enrich_assets.definitions import build_definitions
    from enrich_assets.defs.alerts import enrichment_alerts

    monkeypatch.delenv("ENRICH_ALERT_WEBHOOK_URL", raising=False)
    defs = build_definitions()
    instance = dagster_instance(settings)
    catalog = Catalog(settings.catalog_dir, settings.duckdb_path)
    _write_run(catalog, "ai_caption", "r1", _caption_run(failed=5), 2)

    context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    data = enrichment_alerts.evaluate_tick(context)
    assert json.loads(data.cursor)["active"] == []  # sent once a webhook is configured
    monkeypatch.setenv("ENRICH_ALERT_WEBHOOK_URL", receiver.url)
    context = dg.build_sensor_context(
        instance=instance, cursor=data.cursor, definitions=defs, resources=defs.resources
    )
    data = enrichment_alerts.evaluate_tick(context)
    assert json.loads(data.cursor)["active"] == ["error_rate:ai_caption:d"]
    assert len(receiver.delivered()) == 1


def test_webhook_errors_never_name_the_url(receiver: Receiver) -> None:
    receiver.status = 403
    with pytest.raises(WebhookError) as refused:
        post_json(receiver.url, {"text": "x"})
    assert "HTTP 403" in str(refused.value) and SECRET not in str(refused.value)
    receiver.server.shutdown()
    receiver.server.server_close()
    with pytest.raises(WebhookError) as down:
        post_json(receiver.url, {"text": "x"}, timeout_s=2)
    assert "not reachable" in str(down.value) and SECRET not in str(down.value)
    with pytest.raises(WebhookError) as bad:
        post_json(f"htp://hooks.example/{SECRET}", {"text": "x"})
    assert SECRET not in str(bad.value)
