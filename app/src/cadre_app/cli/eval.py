"""`cadre eval ROLE --models a,b --suite FILE`: score candidate models on a suite, through the role's server.

Prints one line per model: score with its Wilson 95% interval, average cost per task, off-the-rails
spend %, p50 and p95 latency (`--json` for everything, every task result included). `--promote`
makes the winner the role's first candidate when it beats the incumbent by `--margin`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cadre_core.servers import installed

MODEL_FACTORY: Callable[..., Any] | None = None
"""The router's model factory for eval runs; None means the real providers (tests put fakes here)."""


def add_parser(sub: Any, positive_int: Callable[[str], int]) -> None:
    """Register `cadre eval` on the CLI's subparsers (cheap: no eval module is imported)."""
    ev = sub.add_parser("eval", help="score candidate models for a role on a task suite, through the real server")
    ev.add_argument("role", choices=[role for server in installed().values() for role in server.roles])
    ev.add_argument("--models", required=True, help="comma-separated provider:model refs to compare")
    ev.add_argument("--suite", type=Path, default=None, help="TOML or JSONL suite (default: the role's starter suite)")
    ev.add_argument("--repeat", type=positive_int, default=1, help="runs of each task per model (default 1)")
    ev.add_argument("--concurrency", type=positive_int, default=4, help="task runs at once (default 4)")
    ev.add_argument("--timeout", type=float, default=900.0, help="seconds one task run may take (default 900)")
    ev.add_argument("--ledger", type=Path, default=None, help="new ledger file for this run (default: data dir)")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.add_argument("--promote", action="store_true", help="make the winner the role's first candidate if it earns it")
    ev.add_argument("--margin", type=float, default=0.05, help="score the winner must gain over the incumbent")
    ev.add_argument("--config", type=Path, default=None, help="file --promote edits (default: the project .cadre.toml)")


def default_ledger(role: str) -> Path:
    import secrets
    from datetime import UTC, datetime

    import platformdirs

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(platformdirs.user_data_dir("cadre")) / "evals" / f"{role}-{stamp}-{secrets.token_hex(2)}.sqlite"


def promote_path(args: argparse.Namespace) -> Path:
    from cadre_core.config import find_project_config

    config: Path | None = args.config
    if config is not None:
        return config
    root = args.root or Path.cwd()
    return find_project_config(root) or root / ".cadre.toml"


def run(args: argparse.Namespace) -> int:
    import tempfile

    import anyio

    from cadre_app.evals.runner import run_eval
    from cadre_app.evals.suite import builtin_suite, load_suite
    from cadre_core.config import load_config
    from cadre_core.errors import EvalError

    loaded = load_config(args.root)
    suite_path = args.suite or builtin_suite(args.role)
    if suite_path is None:
        raise EvalError(f"there is no starter suite for '{args.role}'; pass --suite FILE")
    suite = load_suite(suite_path)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.margin < 0 or args.margin > 1:
        raise EvalError(f"--margin {args.margin} is not a score difference; use a number from 0 to 1, e.g. 0.05")
    ledger = args.ledger or default_ledger(args.role)
    target = promote_path(args) if args.promote else None
    if target is not None:  # a file --promote cannot edit fails now, before anything is spent
        from cadre_app.evals.promote import check_target

        check_target(target, args.role, loaded.config)

    with tempfile.TemporaryDirectory(prefix="cadre-eval-index-") as index_dir, _progress(
        len(models) * len(suite.tasks) * args.repeat
    ) as on_result:  # fmt: skip
        saved = os.environ.get("CADRE_SEARCH_INDEX_DIR")
        os.environ.setdefault("CADRE_SEARCH_INDEX_DIR", index_dir)  # throwaway task workspaces: throwaway indexes
        try:
            report = anyio.run(
                lambda: run_eval(
                    args.role,
                    models,
                    suite,
                    config=loaded.config,
                    ledger_path=ledger,
                    repeat=args.repeat,
                    concurrency=args.concurrency,
                    timeout_s=args.timeout,
                    model_factory=MODEL_FACTORY,
                    on_result=on_result,
                )
            )
        finally:
            if saved is None:
                os.environ.pop("CADRE_SEARCH_INDEX_DIR", None)

    decision = None
    if target is not None:
        from cadre_app.evals.promote import promote

        decision = promote(report, path=target, effective=loaded.config, margin=args.margin,
                           reload=lambda: load_config(args.root))  # fmt: skip
    if decision is not None and decision.warning:
        print(f"cadre: warning: {decision.warning}", file=sys.stderr)
    if args.json:
        print(json.dumps({**report.as_dict(), "promotion": decision.as_dict() if decision else None}, indent=2))
        return 0
    print_table(report)
    if decision is not None:
        print(f"{'Promoted' if decision.promoted else 'Not promoted'}: {decision.reason}")
    return 0


class _progress:
    """A rich progress bar on stderr, advanced once per finished task run."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True)  # fmt: skip
        self.task = self.bar.add_task("eval", total=total)

    def __enter__(self) -> Callable[[Any], None]:
        self.bar.start()
        return self.advance

    def advance(self, result: Any) -> None:
        mark = "ungraded" if result.ungraded else "pass" if result.passed else "fail"
        self.bar.update(self.task, advance=1, description=f"{result.model} {result.task}: {mark}")

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def print_table(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{report.role} on {report.suite}: {report.tasks} tasks x {report.repeat}",
        title_justify="left",
        caption="score = passed / graded runs (a tool error fails; a run the judge could not grade is left out); "
        "95% CI = Wilson score interval; "
        "off-rails = share of spend on attempts flagged off_rails (n/a: no priced spend); "
        "flagged = flagged / answered attempts, by count; latency per tool call",
        caption_justify="left",
    )
    for col in ("model", "score", "95% CI", "avg cost/task", "off-rails %", "flagged", "p50", "p95", "errors"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for m in sorted(report.models, key=lambda m: -m.score):
        cost = f"${m.avg_cost_usd:.4f}" + (f" (+{m.unpriced_attempts} unpriced)" if m.unpriced_attempts else "")
        table.add_row(
            m.model,
            f"{m.score:.0%} ({m.passed}/{m.runs}" + (f", {m.ungraded} ungraded)" if m.ungraded else ")"),
            f"{m.ci_low:.0%}-{m.ci_high:.0%}",
            cost,
            "n/a" if m.off_rails_pct is None else f"{m.off_rails_pct:.1f}%",
            f"{m.off_rails_attempts}/{m.answered_attempts}",
            _seconds(m.p50_latency_s),
            _seconds(m.p95_latency_s),
            str(m.errors),
        )
    console = Console() if sys.stdout.isatty() else Console(width=200)  # piped: never wrap the columns
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(f"ledger: {report.ledger}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"
