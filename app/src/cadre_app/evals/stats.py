"""Scores and summaries for an eval run.

- score: passed runs / graded runs (tasks x repeats, less the ungraded ones); a tool error counts as a
  failed run. A run whose judge failed (rate limit, missing key, budget, bad output) is ungraded: it is
  left out of the score and the interval, and counted in `ungraded`.
- 95% interval: Wilson score interval, z = 1.959964. Unlike the normal approximation it stays
  inside [0, 1] and is not zero-width at 0% or 100%, which matters for suites of 5-50 tasks.
- cost: the sum of `cost_usd` over the run's ledger rows of that model (every attempt: failed,
  repaired and off-the-rails ones too; judge rows excluded), divided by its number of runs (ungraded too).
- off-the-rails %: spend on rows with outcome `off_rails` / all spend of that model, x 100; None when the
  model has no priced spend (nothing to divide: an unpriced or free model), never a misleading 0.0.
- flagged %: attempts with outcome `off_rails` / attempts that returned an answer (`ok` or `off_rails`),
  x 100, by count; it needs no prices, so it stands in for the spend share when that is None.
- latency: wall-clock seconds of each tool call; p50 and p95 by linear interpolation between
  closest ranks (numpy's default, "type 7").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959963984540054


def wilson(passed: int, runs: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for `passed` successes out of `runs`; (0, 1) when there are no runs."""
    if runs <= 0:
        return 0.0, 1.0
    p = passed / runs
    denom = 1 + z * z / runs
    center = (p + z * z / (2 * runs)) / denom
    half = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)) / denom
    low = 0.0 if passed == 0 else max(0.0, center - half)
    high = 1.0 if passed == runs else min(1.0, center + half)
    return low, high


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class ModelStats:
    """One model's line of the results table."""

    model: str
    runs: int
    passed: int
    errors: int
    score: float
    ci_low: float
    ci_high: float
    total_cost_usd: float
    avg_cost_usd: float
    off_rails_cost_usd: float
    off_rails_pct: float | None
    off_rails_attempts: int
    unpriced_attempts: int
    p50_latency_s: float | None
    p95_latency_s: float | None
    ungraded: int = 0
    """Runs left out of `runs`, `passed` and the score because the judge could not grade them."""
    answered_attempts: int = 0
    """Attempts that returned an answer (ledger outcome `ok` or `off_rails`)."""
    flagged_pct: float | None = None
    """off_rails_attempts / answered_attempts x 100; None when nothing was answered."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(model: str, results: list[Any], rows: list[dict[str, Any]]) -> ModelStats:
    """Stats for `model` from its task results (`.passed`, `.ungraded`, `.error`, `.latency_s`) and ledger rows."""
    graded = [r for r in results if not getattr(r, "ungraded", False)]
    runs = len(graded)
    passed = sum(1 for r in graded if r.passed)
    low, high = wilson(passed, runs)
    total = sum((r["cost_usd"] or 0.0 for r in rows), 0.0)
    off = sum((r["cost_usd"] or 0.0 for r in rows if r["outcome"] == "off_rails"), 0.0)
    latencies = [r.latency_s for r in results]
    flagged = sum(1 for r in rows if r["outcome"] == "off_rails")
    answered = sum(1 for r in rows if r["outcome"] in ("ok", "off_rails"))
    return ModelStats(
        model=model,
        runs=runs,
        passed=passed,
        errors=sum(1 for r in results if r.error is not None),
        score=passed / runs if runs else 0.0,
        ci_low=low,
        ci_high=high,
        total_cost_usd=total,
        avg_cost_usd=total / len(results) if results else 0.0,
        off_rails_cost_usd=off,
        off_rails_pct=100 * off / total if total > 0 else None,
        off_rails_attempts=flagged,
        unpriced_attempts=sum(1 for r in rows if r["cost_usd"] is None and r["outcome"] in ("ok", "off_rails")),
        p50_latency_s=percentile(latencies, 50),
        p95_latency_s=percentile(latencies, 95),
        ungraded=len(results) - runs,
        answered_attempts=answered,
        flagged_pct=100 * flagged / answered if answered else None,
    )
