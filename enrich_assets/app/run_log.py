"""The full story of a CLI invocation's runs, in a file: the console keeps one line each.

Dagster keeps every event in its instance (the UI shows them); this writes the warnings,
errors and failure tracebacks of the runs a command launched to
`<data_dir>/logs/<command>-<time>.log`, whose path the command prints.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from enrich_assets.infra.files import write_text_atomic
from enrich_assets.infra.redact import redact


def _lines(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    lines = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        error = None
        if event is not None and event.is_step_failure:
            error = event.step_failure_data.error
        elif event is not None and event.is_run_failure:
            error = getattr(event.event_specific_data, "error", None)
        traceback_in_message = "Traceback" in (entry.user_message or "")
        if entry.level < logging.WARNING and error is None and not traceback_in_message:
            continue
        when = datetime.fromtimestamp(entry.timestamp, UTC).strftime("%H:%M:%S")
        level = logging.getLevelName(entry.level)
        lines.append(f"{when} {run_id[:8]} {entry.step_key or '-'} {level} {entry.user_message}")
        if error is not None:
            lines.append(error.to_string())
    return lines


def write_run_log(
    instance: dg.DagsterInstance, run_ids: list[str], data_dir: Path, command: str
) -> Path:
    """Write the log of `run_ids` (secrets redacted); returns its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = data_dir / "logs" / f"{command}-{stamp}.log"
    body = [f"# runs: {', '.join(run_ids) or 'none'}"]
    for run_id in run_ids:
        body += _lines(instance, run_id)
    return write_text_atomic(path, redact("\n".join(body) + "\n"))
