"""Runs whose process died (SIGKILL, OOM, a closed laptop) are marked failed, slots freed.

A run started by the CLI carries the pid and host of its process. A killed process leaves
its run STARTED forever and, inside a `vlm_api` step, keeps one of the pool's slots, so
after a few kills every language run waits for ever. Each CLI command first reaps the runs
of this host whose process is gone. Daemon deployments get the same from Dagster's run
monitoring (dagster.yaml).
"""

from __future__ import annotations

import os
import socket

import dagster as dg

PID_TAG, HOST_TAG = "enrich/pid", "enrich/host"
LIVE = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]


def run_tags() -> dict[str, str]:
    """Tags that let a later command tell whether this run's process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every run of this host whose process is gone; free its pool slots."""
    host = socket.gethostname()
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=LIVE, tags={HOST_TAG: host})):
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        instance.report_run_failed(run, f"process {pid} of this run is gone (killed?)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped


def dead_runs(instance: dg.DagsterInstance, limit: int = 20) -> list[dg.DagsterRun]:
    """Runs the reaper marked failed, newest first (for `status`)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE], tags={HOST_TAG: socket.gethostname()}
        ),
        limit=200,
    )
    return [r for r in runs if _reaped(instance, r)][:limit]


def _reaped(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE, ascending=False, limit=1
    ).records
    message = records[0].event_log_entry.message if records else ""
    return "is gone" in (message or "")
