"""Dagster's SQLite event log, storing a batch of asset events in one transaction.

Why: a range run of N episodes records two asset events per episode and asset (materialization
planned, materialized), and Dagster hands them to the storage as one batch when
DAGSTER_EVENT_BATCH_SIZE is set (the run driver sets it). PostgreSQL stores such a batch at
once; Dagster's SQLite storage stores it event by event, each with its own connections and
commits to the run's database and the index database (~25 ms an event on disk): most of the
Dagster cost per episode (docs/benchmarks.md, "Dagster overhead and memory"). Here the same
rows are written, by Dagster's own statements, in one transaction per database.

The CLI seeds a new $DAGSTER_HOME/dagster.yaml with this class (`event_log_config`), at
Dagster's usual place for the files; any Dagster process reading that instance (CLI, UI,
daemon, run workers) then uses it. An instance whose dagster.yaml does not name it keeps
Dagster's own storage, which reads and writes the same files.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, BATCH_WRITABLE_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose `store_event_batch` writes asset events and planned check
    evaluations in one transaction per database; other events one by one, as Dagster does."""

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._open = threading.local()  # the index connection of a batch being stored
        super().__init__(base_dir, inst_data)

    def index_connection(self) -> AbstractContextManager[Connection]:
        """Inside a batch, its open transaction: Dagster's helpers that open their own
        connection (asset check rows) then write in it."""
        conn = getattr(self._open, "conn", None)
        return nullcontext(conn) if conn is not None else super().index_connection()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        batched = [e for e in events if e.dagster_event_type in BATCH_WRITABLE_EVENTS]
        for run_id in dict.fromkeys(e.run_id for e in batched):
            self._store_batch(run_id, [e for e in batched if e.run_id == run_id])
        for event in events:
            if event.dagster_event_type not in BATCH_WRITABLE_EVENTS:
                self.store_event(event)

    def _store_batch(self, run_id: str, events: list[EventLogEntry]) -> None:
        """What `SqliteEventLogStorage.store_event` does for each event, in two
        transactions: the run's own database, then the cross-run index."""
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            assets = [
                (e, i)
                for e, i in zip(events, ids, strict=True)
                if e.dagster_event_type in ASSET_EVENTS
            ]
            self._store_asset_event_tags(conn, [e for e, _ in assets], [i for _, i in assets])
            for event, event_id in last_of_each_kind(assets):
                self._store_asset_event(conn, event, event_id)
            self._open.conn = conn
            try:
                for event, event_id in zip(events, ids, strict=True):
                    if event.dagster_event_type in ASSET_CHECK_EVENTS:
                        self.store_asset_check_event(event, event_id)
            finally:
                self._open.conn = None


def event_log_config(home: Path) -> dict[str, Any]:
    """The `event_log_storage` entry of a dagster.yaml for the instance in `home`: this class,
    on the files Dagster's default SQLite storage uses (absolute: Dagster resolves a relative
    `base_dir` against the working directory, not the instance)."""
    return {
        "event_log_storage": {
            "module": __name__,
            "class": BatchedSqliteEventLogStorage.__name__,
            "config": {"base_dir": str(home.resolve() / "history" / "runs")},
        }
    }


def last_of_each_kind(
    events: Sequence[tuple[EventLogEntry, int]],
) -> list[tuple[EventLogEntry, int]]:
    """The last event of each (asset, event type), in order. The asset row keeps, per
    column, the value of the last event that sets it, and events of one type set the same
    columns, so applying these alone leaves the row as applying all would (PostgreSQL's
    storage keeps only the last event of a batch likewise)."""
    last: dict[tuple[Any, Any], int] = {}
    for i, (event, _) in enumerate(events):
        asset_key = event.dagster_event.asset_key if event.dagster_event else None
        last[(asset_key, event.dagster_event_type)] = i
    return [events[i] for i in sorted(last.values())]
