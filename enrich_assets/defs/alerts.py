"""`enrichment_alerts`: posts each alert condition to the webhook once, until it clears.

Every tick it applies the alert rules (enrich/monitoring/alerts.py) to the latest run of each
asset and dataset in `run_metrics` (the same rules the `alert_*` checks apply to each run),
adds rule 3's period form (new episodes registered, no frames enriched for
`alerts.no_frames.hours`), and posts a Slack-compatible `{"text": ...}` for every condition
that was not holding at the last tick. Which conditions were sent lives in the cursor, so a
condition alerts once, and again only after it cleared and recurred. A post that fails is
logged (without the URL) and tried again next tick.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

import dagster as dg

from enrich_assets.defs.partitions import episodes
from enrich_assets.defs.resources import PipelineResource
from enrich_assets.enrich.monitoring.alerts import (
    AlertState,
    Thresholds,
    due,
    expecting_since,
    run_alerts,
    stalled_alert,
)
from enrich_assets.enrich.monitoring.metrics import METRICS_TABLE
from enrich_assets.infra.settings import load_settings
from enrich_assets.infra.webhook import WebhookError, post_json


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Posts the alert rules' new conditions (error rate, quality drop, no frames) "
    "to the webhook named by alerts.webhook_url_env, once per condition until it clears.",
)
def enrichment_alerts(
    context: dg.SensorEvaluationContext, pipeline: PipelineResource
) -> dg.SkipReason:
    alerts = load_settings().alerts
    thresholds = Thresholds.from_settings(alerts)
    state = AlertState(**json.loads(context.cursor)) if context.cursor else AlertState()
    now = datetime.now(UTC)
    rows = pipeline.catalog.read(METRICS_TABLE).to_dicts()
    current = run_alerts(rows, thresholds)
    registered = len(context.instance.get_dynamic_partitions(episodes.name))
    last_enriched = max((r["created_at"] for r in rows if r["frames"]), default=None)
    since = expecting_since(state, registered, last_enriched, now)
    if (stalled := stalled_alert(since, now, thresholds)) is not None:
        current.append(stalled)
    url = alerts.webhook_url()
    sent: list[str] = []
    for alert in due(state.active, current):
        if not url:
            context.log.warning(
                f"not sent (no webhook URL in ${alerts.webhook_url_env}): {alert.text()}"
            )
            continue
        try:
            post_json(url, {"text": alert.text()}, alerts.webhook_timeout_s)
        except WebhookError as exc:  # tried again next tick: it stays out of `active`
            context.log.warning(f"alert {alert.key} not sent, retried next tick: {exc}")
            continue
        sent.append(alert.key)
        context.log.info(f"sent: {alert.text()}")
    active = sorted(a.key for a in current if a.key in state.active or a.key in sent)
    cleared = sorted(set(state.active) - set(active))
    if cleared:
        context.log.info(f"cleared: {', '.join(cleared)}")
    new_state = AlertState(
        active=tuple(active),
        registered=registered,
        checked_at=now.isoformat(),
        expecting_since=since.isoformat() if since else None,
    )
    context.update_cursor(json.dumps(asdict(new_state)))
    return dg.SkipReason(
        f"{len(current)} conditions holding, {len(sent)} sent now, {len(cleared)} cleared"
    )
