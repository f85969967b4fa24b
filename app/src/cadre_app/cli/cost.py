"""`cadre cost`: what is left of each budget, then spend from the ledger by role, model, tool, day, thread and user;
`--html` writes a report.

The model and tool groupings are the usage table of `cadre_app.usage` (calls, spend, average thread
cost, off-the-rails %, p50/p95 latency, failure rate); role, day, thread and user are the store's SQL sums.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cadre_app import usage
from cadre_app.cli.render import Column, layout
from cadre_core.config import load_config
from cadre_core.errors import CadreError
from cadre_core.ledger import open_ledger_store

USAGE_GROUPS = ("model", "tool")


def budgets(cfg: Any) -> list[dict[str, Any]]:
    """What is left of each configured cap (empty when no cap is set): per day, month and role, the per-call
    cap, and the per-thread cap with the spend of the 5 busiest threads in the budget store. Opening the store
    settles what a crashed process left held, and its ledger rows are written before this returns."""
    from cadre_core.budget import Caps, open_budget

    budget = open_budget(cfg)
    if budget is None:
        return []
    if budget.ledger is not None:  # open_budget always gives one
        budget.ledger.close()  # written before the ledger is read
    caps = Caps.from_config(cfg.budget, None)
    roles = {name: role.budget_per_day_usd for name, role in cfg.roles.items() if role.budget_per_day_usd is not None}
    return budget.remaining(caps, roles)


def since_day(args: Any) -> str | None:
    """The first UTC day of `--days N` (today counts as one), or None for all time."""
    return (datetime.now(UTC) - timedelta(days=args.days - 1)).date().isoformat() if args.days else None


def ledger_slice(store: Any, since: str | None) -> usage.LedgerSlice:
    """The ledger rows of the period; warns on stderr if older rows of the period were left out."""
    data = usage.read_rows(store, since_day=since)
    if data.truncated:
        print(
            f"cadre: only the latest {usage.ROW_LIMIT:,} attempts of the period are counted; pass a smaller --days",
            file=sys.stderr,
        )
    return data


def summaries(args: Any) -> dict[str, Any]:
    """Spend per grouping, what is left of each cap (`budgets`), and the calls settled after a crash
    (`settled_after_crash`: calls and cost_usd)."""
    cfg = load_config(args.root).config
    groupings = args.by or ["role", "model", "day", "thread"]
    caps = budgets(cfg)  # first: it may record what a crash left
    store = open_ledger_store(cfg)
    if store is None:
        return {by: [] for by in groupings} | {"budgets": caps, "settled_after_crash": {"calls": 0, "cost_usd": 0.0}}
    since = since_day(args)
    try:
        rows = ledger_slice(store, since).rows if any(by in USAGE_GROUPS for by in groupings) else []
        return {
            by: [s.to_dict() for s in usage.stats(rows, by)] if by in USAGE_GROUPS else store.summary(by, since)
            for by in groupings
        } | {"budgets": caps, "settled_after_crash": store.settled_after_crash(since)}
    finally:
        store.close()


def write_html(args: Any) -> Path:
    """Write the HTML report for the period to `args.html`."""
    from cadre_app import report_html

    cfg = load_config(args.root).config
    since = since_day(args)
    data = usage.LedgerSlice([])
    store = open_ledger_store(cfg)
    if store is not None:
        try:
            data = ledger_slice(store, since)
        finally:
            store.close()
    period = f"since {since} (UTC)" if since else "all time"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = report_html.render(data, period=period, generated=generated)
    target = Path(args.html)
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise CadreError(
            f"cannot write the report to {target} ({exc.strerror or exc}); pass a writable path to --html"
        ) from exc
    return target


def run(args: Any) -> int:
    if getattr(args, "html", None):
        print(f"Report written to {write_html(args)}")
        return 0
    data = summaries(args)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console

    render(Console(), data)
    return 0


def render(console: Any, data: dict[str, Any]) -> None:
    """What `summaries` returned, each table laid out to fit the console without cutting a value."""
    data = dict(data)
    caps, crashes = data.pop("budgets"), data.pop("settled_after_crash", None)
    if caps:
        console.print(budgets_table(console, caps))
    if crashes and crashes["calls"]:
        console.print(
            f"Settled after a crash: {crashes['calls']} call{'s' if crashes['calls'] != 1 else ''}, "
            f"${crashes['cost_usd']:.4f} "
            "(cut off when their process died, billed for their input; error_class process_died)",
            highlight=False,
        )
    if not any(data.values()):
        console.print("No model calls recorded yet.")
        return
    for by, groups in data.items():
        console.print()
        console.print(usage_table(console, by, groups) if by in USAGE_GROUPS else sums_table(console, by, groups))


def budgets_table(console: Any, caps: list[dict[str, Any]]) -> Any:
    """What is left of each cap; the per-call cap as 'per call: $X cap'; the busiest threads under per_thread_usd
    and users under per_user_per_day_usd."""
    rows: list[list[str]] = []
    for row in caps:
        if row["cap"] == "per_call_usd":
            rows.append([row["cap"], f"{row['limit_usd']:.2f}", f"per call: ${row['limit_usd']:.4f} cap", ""])
            continue
        kind, key = ("thread", "thread_id") if "threads" in row else ("user", "user")
        busiest = row.get(f"{kind}s")
        if busiest is None:
            rows.append(
                [row["cap"], f"{row['limit_usd']:.2f}", f"{row['spent_usd']:.4f}", f"{row['remaining_usd']:.4f}"]
            )
            continue
        rows.append([row["cap"], f"{row['limit_usd']:.2f}", f"busiest {kind}s:" if busiest else f"no {kind} yet", ""])
        for one in busiest:
            rows.append([f"  {kind} {one[key]}", "", f"{one['spent_usd']:.4f}", f"{one['remaining_usd']:.4f}"])
    columns = (Column("cap"), Column("limit USD", "right"), Column("spent or held USD", "right"),
               Column("left USD", "right"))  # fmt: skip
    return layout(console, columns, rows, title="Budgets (UTC day / month)")


def usage_table(console: Any, by: str, groups: list[dict[str, Any]]) -> Any:
    """Calls, spend, average thread cost, off-the-rails %, p50/p95 latency and failure rate per group."""
    columns = (Column(by), *(Column(col, "right") for col in usage.COLUMNS))
    rows = [[g["key"], *usage.UsageStats(**g).cells()] for g in groups]
    return layout(console, columns, rows, title=f"Spend by {by}", caption=usage.CAPTION)


def sums_table(console: Any, by: str, groups: list[dict[str, Any]]) -> Any:
    """Attempts, tokens, cost and mean latency per group, from the store's SQL sums."""
    headers = ("attempts", "ok", "failed", "input tok", "output tok", "cost USD", "avg latency")
    rows = []
    for g in groups:
        cost = "unknown" if g["cost_usd"] is None else f"{g['cost_usd']:.4f}"
        if g["unpriced"] and g["cost_usd"] is not None:
            cost += f" (+{g['unpriced']} unpriced)"
        rows.append([
            str(g["key"] or "-"), str(g["attempts"]), str(g["ok"]), str(g["failed"]), f"{g['input_tokens'] or 0:,}",
            f"{g['output_tokens'] or 0:,}", cost, f"{(g['avg_latency_ms'] or 0) / 1000:.2f}s",
        ])  # fmt: skip
    return layout(console, (Column(by), *(Column(h, "right") for h in headers)), rows, title=f"Spend by {by}")
