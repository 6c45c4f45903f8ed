"""What VLM calls cost: the price table, one ledger row per request, run totals, estimates,
and the per-run budget that refuses a call before it could overspend.

Pure: rows are returned, the catalog layer writes them.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from enrich_assets.infra.files import file_lock, write_text_atomic
from enrich_assets.infra.partition_keys import partition_key
from enrich_assets.infra.paths import schema_file
from enrich_assets.infra.redact import redact
from enrich_assets.models.vlm.types import VLMReply, VLMRequest

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 800  # a conservative per-image input estimate (GPT-4o high detail ~765)


class UnknownModelPrice(ValueError):
    pass


class BudgetExceeded(RuntimeError):
    """Raised before a call that could take the run past its cap; no call is issued."""


@dataclass(frozen=True)
class Price:
    input_per_m: float
    output_per_m: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_m + output_tokens * self.output_per_m) / 1e6


FREE = Price(0.0, 0.0)


def load_prices(path: Path | None = None) -> dict[str, Price]:
    data = yaml.safe_load(Path(path or schema_file("prices.yaml")).read_text())
    try:
        return {
            str(model): Price(float(p["input"]), float(p["output"]))
            for model, p in data["models"].items()
        }
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: every model needs numeric input/output prices ({e})") from e


def price_for(model: str, prices: Mapping[str, Price]) -> Price:
    if model in prices:
        return prices[model]
    for pattern, price in prices.items():
        if fnmatch.fnmatchcase(model, pattern):
            return price
    raise UnknownModelPrice(f"no price for model {model!r}: add it to schemas/prices.yaml")


def priced(model: str, prices: Mapping[str, Price], *, budget_usd: float | None) -> Price | None:
    """The model's price before the first call: without one, a budget cannot be kept, so a
    budgeted run is refused (UnknownModelPrice, one line); an unbudgeted one is warned that
    its ledger rows will carry no cost."""
    try:
        return price_for(model, prices)
    except UnknownModelPrice as e:
        if budget_usd is not None:
            raise UnknownModelPrice(
                f"budget_usd is set but {e}; no call issued (a budget needs a price)"
            ) from None
        log.warning("%s; its ledger rows will have no cost_usd", e)
        return None


def estimate_tokens(texts: Iterable[str], n_images: int) -> int:
    """Input tokens of a prompt before sending it (characters / 4, a fixed cost per image)."""
    return math.ceil(sum(len(t) for t in texts) / CHARS_PER_TOKEN) + IMAGE_TOKENS * n_images


@dataclass(frozen=True)
class LedgerEntry:
    """One request as the catalog records it (retries and repairs summed into it). Rows are
    only ever appended: a re-run adds its own rows (cached ones at $0) beside the paid ones."""

    time: str  # ISO 8601 UTC
    run_id: str
    asset: str
    partition: str
    kind: str
    model: str
    status: str  # ok | cached | quarantined | failed (the call raised) | refused (budget)
    input_tokens: int
    output_tokens: int
    latency_s: float
    attempts: int
    cost_usd: float | None  # None: the model has no price in schemas/prices.yaml
    error: str | None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def ledger_entry(
    request: VLMRequest,
    reply: VLMReply,
    *,
    run_id: str,
    asset: str,
    partition: str,
    prices: Mapping[str, Price],
) -> LedgerEntry:
    if reply.failed:
        status = "refused" if reply.failed == "BudgetExceeded" else "failed"
    else:
        status = "cached" if reply.cached else ("quarantined" if reply.error else "ok")
    cost: float | None = 0.0
    if not reply.cached and (reply.input_tokens or reply.output_tokens):
        try:
            cost = price_for(reply.model, prices).cost(reply.input_tokens, reply.output_tokens)
        except UnknownModelPrice:
            cost = None
    return LedgerEntry(
        time=datetime.now(UTC).isoformat(timespec="milliseconds"),
        run_id=run_id,
        asset=asset,
        partition=partition,
        kind=request.kind,
        model=reply.model,
        status=status,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        latency_s=round(reply.latency_s, 4),
        attempts=reply.attempts,
        cost_usd=cost,
        error=redact(reply.error),
    )


def run_totals(entries: Iterable[LedgerEntry]) -> dict[str, float | int]:
    """Per-run figures for materialization metadata."""
    rows = list(entries)
    return {
        "vlm_requests": len(rows),
        "vlm_cached": sum(r.status == "cached" for r in rows),
        "vlm_quarantined": sum(r.status == "quarantined" for r in rows),
        "vlm_failed": sum(r.status in ("failed", "refused") for r in rows),
        "vlm_input_tokens": sum(r.input_tokens for r in rows),
        "vlm_output_tokens": sum(r.output_tokens for r in rows),
        "vlm_cost_usd": round(sum(r.cost_usd or 0.0 for r in rows), 6),
        "vlm_latency_s": round(sum(r.latency_s for r in rows), 3),
    }


def ledger_rows(
    calls: Iterable[tuple[VLMRequest, VLMReply]],
    *,
    run_id: str,
    asset: str,
    dataset_id: str,
    episode_index: int,
    code_version: str,
    prices: Mapping[str, Price],
) -> tuple[list[LedgerEntry], list[dict[str, Any]]]:
    """One episode's calls as entries (for the run totals) and as the catalog's ledger rows
    (each entry with the episode's provenance)."""
    partition = partition_key(dataset_id, episode_index)
    entries = [
        ledger_entry(q, a, run_id=run_id, asset=asset, partition=partition, prices=prices)
        for q, a in calls
    ]
    provenance = {
        "dataset_id": dataset_id,
        "episode_index": episode_index,
        "code_version": code_version,
        "created_at": datetime.now(UTC),
    }
    return entries, [{**provenance, **e.as_row()} for e in entries]


@dataclass(frozen=True)
class KindEstimate:
    """Expected work for one prompt kind: how many requests, mean tokens in and out each."""

    requests: int
    input_tokens: int
    output_tokens: int


def estimate_work(requests: Iterable[VLMRequest]) -> dict[str, KindEstimate]:
    """Upper estimate of the work per kind for `estimate_cost`: prompts as they will be sent,
    every answer at its full max_tokens."""
    by_kind: dict[str, list[VLMRequest]] = {}
    for request in requests:
        by_kind.setdefault(request.kind, []).append(request)
    return {
        kind: KindEstimate(
            requests=len(rs),
            input_tokens=_mean_up(estimate_tokens((r.system, r.prompt), len(r.images)) for r in rs),
            output_tokens=_mean_up(r.max_tokens for r in rs),
        )
        for kind, rs in by_kind.items()
    }


def _mean_up(values: Iterable[int]) -> int:
    values = list(values)
    return math.ceil(sum(values) / len(values))


def estimate_cost(
    model: str, work: Mapping[str, KindEstimate], prices: Mapping[str, Price]
) -> dict[str, float]:
    """Pre-run estimate in USD per kind, plus "total"."""
    price = price_for(model, prices)
    costs = {
        kind: price.cost(w.requests * w.input_tokens, w.requests * w.output_tokens)
        for kind, w in work.items()
    }
    costs["total"] = sum(costs.values())
    return costs


class Budget:
    """A per-run USD cap shared by all of a run's calls.

    Each call reserves its worst case (estimated input, max output tokens) before it is
    issued and settles at the real cost after. Once a reservation is refused the budget stays
    exhausted, so no later call slips in under a smaller estimate. With `state_path`, the
    figures live in a file every process of the run shares (Dagster runs each asset step in
    its own process), locked around each update, so the cap holds for the run as a whole.
    """

    def __init__(self, cap_usd: float, price: Price, state_path: Path | None = None) -> None:
        self.cap_usd = cap_usd
        self.price = price
        self.state_path = state_path
        self._memory = {"spent": 0.0, "reserved": 0.0, "exhausted": False}
        self._lock = threading.Lock()

    @property
    def spent_usd(self) -> float:
        with self._state() as state:
            return state["spent"]

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            if self.state_path is None:
                yield self._memory
                return
            with file_lock(self.state_path.with_suffix(".lock")):
                state = (
                    json.loads(self.state_path.read_text())
                    if self.state_path.is_file()
                    else dict(self._memory)
                )
                try:
                    yield state  # a refusal marks it exhausted, so write on the way out too
                finally:
                    write_text_atomic(self.state_path, json.dumps(state))

    def reserve(self, input_tokens: int, output_tokens: int) -> float:
        cost = self.price.cost(input_tokens, output_tokens)
        with self._state() as state:
            # a hair of tolerance: ten $0.001 calls fit a $0.01 cap despite float sums
            committed = state["spent"] + state["reserved"]
            if state["exhausted"] or committed + cost > self.cap_usd + 1e-12:
                state["exhausted"] = True
                raise BudgetExceeded(
                    f"VLM budget of ${self.cap_usd:.4f} for this run reached "
                    f"(spent ${state['spent']:.4f}, next call up to ${cost:.4f}); "
                    "no further calls issued"
                )
            state["reserved"] += cost
        return cost

    def settle(self, reserved: float, input_tokens: int, output_tokens: int) -> None:
        with self._state() as state:
            state["reserved"] -= reserved
            state["spent"] += self.price.cost(input_tokens, output_tokens)


LEDGER_TABLE = "vlm_ledger"


def weekly_view_sql(table: str = LEDGER_TABLE, view: str = "vlm_cost_weekly") -> str:
    """DuckDB view over the ledger table: one row per ISO week, model and kind."""
    return f"""
CREATE OR REPLACE VIEW {view} AS
SELECT date_trunc('week', CAST(time AS TIMESTAMPTZ)) AS week, model, kind,
       count(*) AS requests,
       count(*) FILTER (WHERE status = 'cached') AS cached,
       count(*) FILTER (WHERE status = 'quarantined') AS quarantined,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cost_usd) AS cost_usd
FROM {table}
GROUP BY ALL
ORDER BY week, model, kind
"""


# Catalog views over the ledger (see Catalog.refresh_views).
LEDGER_VIEWS = {LEDGER_TABLE: weekly_view_sql()}
