"""`cadre cost`: spend from the ledger by role, model, day and thread."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cadre_core.config import load_config
from cadre_core.ledger import SQLiteLedgerStore, default_ledger_path


def budgets(cfg: Any) -> list[dict[str, Any]]:
    """What is left of each configured cap (empty when no cap is set)."""
    from cadre_core.budget import Caps
    from cadre_core.kit import open_budget

    budget = open_budget(cfg)
    if budget is None:
        return []
    caps = Caps.from_config(cfg.budget, None)
    roles = {name: role.budget_per_day_usd for name, role in cfg.roles.items() if role.budget_per_day_usd is not None}
    return budget.remaining(caps, roles)


def summaries(args: Any) -> dict[str, list[dict[str, Any]]]:
    cfg = load_config(args.root).config
    path = cfg.paths.ledger or default_ledger_path()
    groupings = args.by or ["role", "model", "day", "thread"]
    if not path.exists():
        return {by: [] for by in groupings} | {"budgets": budgets(cfg)}
    since = (datetime.now(UTC) - timedelta(days=args.days - 1)).date().isoformat() if args.days else None
    store = SQLiteLedgerStore(path)
    try:
        return {by: store.summary(by, since) for by in groupings} | {"budgets": budgets(cfg)}
    finally:
        store.close()


def run(args: Any) -> int:
    data = summaries(args)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    caps = data.pop("budgets")
    if caps:
        table = Table(title="Budgets (UTC day / month)", title_justify="left")
        for col in ("cap", "limit USD", "spent or held USD", "left USD"):
            table.add_column(col, justify="left" if col == "cap" else "right")
        for row in caps:
            table.add_row(
                row["cap"], f"{row['limit_usd']:.2f}", f"{row['spent_usd']:.4f}", f"{row['remaining_usd']:.4f}"
            )
        console.print(table)
    if not any(data.values()):
        console.print("No model calls recorded yet.")
        return 0
    for by, groups in data.items():
        table = Table(title=f"Spend by {by}", title_justify="left")
        for col in (
            by,
            "attempts",
            "ok",
            "failed",
            "input tok",
            "output tok",
            "cost USD",
            "avg latency",
        ):
            table.add_column(col, justify="left" if col == by else "right")
        for g in groups:
            cost = "unknown" if g["cost_usd"] is None else f"{g['cost_usd']:.4f}"
            if g["unpriced"] and g["cost_usd"] is not None:
                cost += f" (+{g['unpriced']} unpriced)"
            table.add_row(
                str(g["key"] or "-"),
                str(g["attempts"]),
                str(g["ok"]),
                str(g["failed"]),
                f"{g['input_tokens'] or 0:,}",
                f"{g['output_tokens'] or 0:,}",
                cost,
                f"{(g['avg_latency_ms'] or 0) / 1000:.2f}s",
            )
        console.print(table)
    return 0
