"""`cadre trace THREAD_ID`: the chain of model attempts behind a thread, from the ledger."""

from __future__ import annotations

import json
from typing import Any

from cadre_core.config import load_config
from cadre_core.errors import CadreError
from cadre_core.ledger import SQLiteLedgerStore, default_ledger_path

COLUMNS = ("ts", "tool", "role", "model", "attempt", "outcome", "detector", "error_class", "cost_usd", "latency_ms")


def attempts(args: Any) -> list[dict[str, Any]]:
    path = load_config(args.root).config.paths.ledger or default_ledger_path()
    if not path.exists():
        raise CadreError(f"no ledger yet at {path}; make a model call first")
    store = SQLiteLedgerStore(path)
    try:
        rows = store.rows(thread_id=args.thread_id, limit=10_000)
    finally:
        store.close()
    if not rows:
        raise CadreError(f"no attempts recorded for thread '{args.thread_id}'; pass a thread_id a tool returned")
    return [{**{c: r[c] for c in COLUMNS if c != "model"}, "model": f"{r['provider']}:{r['model']}"} for r in rows]


def run(args: Any) -> int:
    rows = attempts(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Thread {args.thread_id}", title_justify="left")
    for col in ("time", "tool", "model", "#", "outcome", "why", "cost USD", "latency"):
        table.add_column(col)
    for r in rows:
        why = r["detector"] or r["error_class"] or ""
        cost = "unknown" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}"
        table.add_row(r["ts"][11:19], r["tool"], r["model"], str(r["attempt"]), r["outcome"], why, cost,
                      f"{r['latency_ms'] / 1000:.1f}s")  # fmt: skip
    total = sum(r["cost_usd"] or 0 for r in rows)
    Console().print(table)
    Console().print(f"{len(rows)} attempts, ${total:.4f} in all")
    return 0
