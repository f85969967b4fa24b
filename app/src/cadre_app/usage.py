"""Usage statistics from ledger rows: the per-model "Amp table" and spend per day.

Plain functions over the row dicts a `LedgerStore` returns. Definitions, over one group's rows in the period:

- attempts: ledger rows. calls: attempts sent to the model, i.e. every outcome except `budget_refused`
  (refused by a budget cap before anything was sent; counted as `refused`).
- spend: the sum of `cost_usd` over priced rows. unpriced: calls that got an answer (`ok` or `off_rails`)
  but have no price; they count in calls and add nothing to spend. Rows without an answer cost nothing,
  except a call cut off by a crash (`cancelled`, `error_class=process_died`), billed for its input.
- off-the-rails %: spend on `off_rails` rows (answers a detector or validator flagged) / spend x 100;
  None when spend is 0.
- failure rate: calls that ended without an answer, outcome `error` or `fallback` (an error after which the
  route moved on) / (calls - cancelled). `off_rails` is reported separately above; `cancelled` (the caller
  gave up) is neither a failure nor a success, so it is left out of both sides; None when every call was
  cancelled.
- average thread cost: the group's spend on calls that carry a `thread_id` / the number of distinct
  thread ids among those calls (this model's share of a thread, not other models' spend in it);
  None when no call has a thread.
- p50 / p95 latency: nearest-rank percentiles of `latency_ms` over answered calls (`ok`, `off_rails`):
  the smallest value with at least p% of the values at or below it, i.e. `sorted(v)[ceil(p/100 * n) - 1]`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

ROW_LIMIT = 200_000
"""Attempts read per report; the period and role filters run in SQL first, so only a period with
more attempts than this is cut (and says so)."""
ANSWERED = frozenset({"ok", "off_rails"})
FAILED = frozenset({"error", "fallback"})
GROUPS = ("model", "role", "tool")
ROUNDING = {
    "cost_usd": 6,
    "off_rails_cost_usd": 6,
    "avg_thread_cost_usd": 6,
    "off_rails_pct": 2,
    "failure_rate": 4,
    "p50_latency_ms": 1,
    "p95_latency_ms": 1,
}
COLUMNS = ("calls", "spend USD", "USD per thread", "off-rails", "p50", "p95", "failed")
CAPTION = (
    "off-rails: share of spend on flagged answers; p50/p95: latency of answered calls; "
    "failed: share of calls not cancelled that ended in an error; "
    "USD per thread: this model's spend per thread it took part in"
)


@dataclass
class LedgerSlice:
    """The rows of a period; `truncated` when older rows of the period were left out (over `limit`)."""

    rows: list[dict[str, Any]]
    truncated: bool = False


def read_rows(
    store: Any, *, since_day: str | None = None, role: str | None = None, limit: int = ROW_LIMIT
) -> LedgerSlice:
    """The newest `limit` attempts from `store` on or after `since_day` (UTC YYYY-MM-DD), of `role` if given."""
    rows = store.rows(limit=limit, since_day=since_day, role=role)
    return LedgerSlice(rows, truncated=len(rows) >= limit)


def group_key(row: dict[str, Any], by: str) -> str:
    """The row's group: `provider:model`, its role or its tool ("-" when it has none)."""
    if by == "model":
        return f"{row['provider']}:{row['model']}"
    if by in ("role", "tool"):
        return row[by] or "-"
    raise ValueError(f"cannot group usage by {by!r}; use one of {', '.join(GROUPS)}")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of `values` at or below it; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]


@dataclass
class UsageStats:
    """One group's line of the table (see the module docstring for each definition)."""

    key: str
    attempts: int
    calls: int
    refused: int
    ok: int
    off_rails: int
    failures: int
    cancelled: int
    priced: int
    unpriced: int
    cost_usd: float
    off_rails_cost_usd: float
    threads: int
    avg_thread_cost_usd: float | None
    off_rails_pct: float | None
    failure_rate: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    input_tokens: int
    output_tokens: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with USD to 6 decimals, percentages to 2, latency to 0.1 ms and rates to 4."""
        out = asdict(self)
        for name, digits in ROUNDING.items():
            if out[name] is not None:
                out[name] = round(out[name], digits)
        return out

    def cells(self) -> list[str]:
        """Display strings for `COLUMNS`."""
        return [
            str(self.calls),
            spend_text(self.cost_usd, self.priced, self.unpriced),
            "-" if self.avg_thread_cost_usd is None else f"{self.avg_thread_cost_usd:.4f}",
            "-" if self.off_rails_pct is None else f"{self.off_rails_pct:.1f}%",
            seconds_text(self.p50_latency_ms),
            seconds_text(self.p95_latency_ms),
            "-" if self.failure_rate is None else f"{self.failure_rate * 100:.1f}%",
        ]


def spend_text(cost: float, priced: int, unpriced: int) -> str:
    """USD to 4 decimals, naming calls without a price."""
    if unpriced and not priced:
        return f"unpriced ({unpriced})"
    return f"{cost:.4f}" + (f" (+{unpriced} unpriced)" if unpriced else "")


def seconds_text(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f}s"


def stats(rows: list[dict[str, Any]], by: str = "model") -> list[UsageStats]:
    """One `UsageStats` per group, highest spend first (then most calls, then name)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(group_key(row, by), []).append(row)
    out = [_one(key, group) for key, group in groups.items()]
    out.sort(key=lambda s: (-s.cost_usd, -s.calls, s.key))
    return out


def _one(key: str, rows: list[dict[str, Any]]) -> UsageStats:
    calls = [r for r in rows if r["outcome"] != "budget_refused"]
    answered = [r for r in calls if r["outcome"] in ANSWERED]
    cost = sum(r["cost_usd"] for r in rows if r["cost_usd"] is not None)
    off_rails_cost = sum(r["cost_usd"] for r in rows if r["cost_usd"] is not None and r["outcome"] == "off_rails")
    threaded = [r for r in calls if r["thread_id"]]
    threads = {r["thread_id"] for r in threaded}
    thread_cost = sum(r["cost_usd"] for r in threaded if r["cost_usd"] is not None)
    failures = sum(1 for r in calls if r["outcome"] in FAILED)
    cancelled = sum(1 for r in calls if r["outcome"] == "cancelled")
    latencies = [float(r["latency_ms"]) for r in answered]
    return UsageStats(
        key=key,
        attempts=len(rows),
        calls=len(calls),
        refused=len(rows) - len(calls),
        ok=sum(1 for r in calls if r["outcome"] == "ok"),
        off_rails=sum(1 for r in calls if r["outcome"] == "off_rails"),
        failures=failures,
        cancelled=cancelled,
        priced=sum(1 for r in rows if r["cost_usd"] is not None),
        unpriced=sum(1 for r in answered if r["cost_usd"] is None),
        cost_usd=cost,
        off_rails_cost_usd=off_rails_cost,
        threads=len(threads),
        avg_thread_cost_usd=thread_cost / len(threads) if threads else None,
        off_rails_pct=off_rails_cost / cost * 100 if cost > 0 else None,
        failure_rate=failures / settled if (settled := len(calls) - cancelled) else None,
        p50_latency_ms=percentile(latencies, 50),
        p95_latency_ms=percentile(latencies, 95),
        input_tokens=sum(r["input_tokens"] or 0 for r in rows),
        output_tokens=sum(r["output_tokens"] or 0 for r in rows),
    )


def daily_spend(rows: list[dict[str, Any]], by: str = "role") -> tuple[list[str], dict[str, list[float]]]:
    """Every UTC day from the first row's to the last row's, and each group's spend on each of those days.

    Groups are ordered by total spend, highest first; a day without spend is 0.0.
    """
    if not rows:
        return [], {}
    first = date.fromisoformat(min(r["day"] for r in rows))
    last = date.fromisoformat(max(r["day"] for r in rows))
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[float]] = {}
    for row in rows:
        values = series.setdefault(group_key(row, by), [0.0] * len(days))
        values[index[row["day"]]] += row["cost_usd"] or 0.0
    ordered = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    return days, dict(ordered)
