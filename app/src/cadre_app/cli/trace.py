"""`cadre trace THREAD_ID`: the chain of model attempts behind a thread, from the ledger."""

from __future__ import annotations

import json
from typing import Any

from cadre_app.cli.render import Column, layout
from cadre_core.config import load_config
from cadre_core.errors import CadreError
from cadre_core.ledger import default_ledger_path, open_ledger_store

COLUMNS = ("ts", "tool", "role", "model", "attempt", "outcome", "detector", "error_class", "message", "cost_usd",
           "latency_ms")  # fmt: skip
SHOWN = (
    Column("time"),
    Column("tool"),
    Column("model"),
    Column("try", "right"),
    Column("outcome"),
    Column("why"),
    Column("cost USD", "right"),
    Column("latency", "right"),
    Column("message", prose=True),
)


def attempts(args: Any) -> list[dict[str, Any]]:
    config = load_config(args.root).config
    store = open_ledger_store(config)
    if store is None:
        raise CadreError(f"no ledger yet at {config.paths.ledger or default_ledger_path()}; make a model call first")
    try:
        rows = store.rows(thread_id=args.thread_id, limit=10_000)
    finally:
        store.close()
    if not rows:
        raise CadreError(f"no attempts recorded for thread '{args.thread_id}'; pass a thread_id a tool returned")
    return [{**{c: r.get(c) for c in COLUMNS if c != "model"}, "model": f"{r['provider']}:{r['model']}"} for r in rows]


def render(console: Any, thread_id: str, rows: list[dict[str, Any]]) -> None:
    """The attempts as a table, or one block per attempt when the table would not fit uncut; then the total."""
    cells = [
        [
            r["ts"][11:19],
            r["tool"] or "-",
            r["model"],
            str(r["attempt"]),
            r["outcome"],
            r["detector"] or r["error_class"] or "",
            "unknown" if r["cost_usd"] is None else f"{r['cost_usd']:.4f}",
            f"{r['latency_ms'] / 1000:.1f}s",
            r["message"] or "",
        ]
        for r in rows
    ]
    columns = SHOWN if any(r["message"] for r in rows) else SHOWN[:-1]
    console.print(layout(console, columns, [c[: len(columns)] for c in cells], title=f"Thread {thread_id}"))
    total = sum(r["cost_usd"] or 0 for r in rows)
    console.print(f"{len(rows)} attempt{'s' if len(rows) != 1 else ''}, ${total:.4f} in all", highlight=False)


def run(args: Any) -> int:
    rows = attempts(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console

    render(Console(), args.thread_id, rows)
    return 0
