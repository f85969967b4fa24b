"""`cadre search`: the offline search engine from the shell, JSON for scripts and benchmarks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cadre_core.errors import CadreError


def run(args: Any) -> int:
    try:
        from cadre_search.engine import Engine
    except ImportError as exc:  # pragma: no cover - the umbrella install always has it
        raise CadreError("cadre search needs the cadre-search package; install it with `uv sync`") from exc
    query = sys.stdin.read() if args.query == "-" else args.query
    root = Path(args.search_root or args.root or Path.cwd())
    engine = Engine(root)
    progress = _progress_bar() if sys.stderr.isatty() and not args.json else None
    try:
        result = engine.search(query, limit=args.limit, path=args.path, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.markup import escape

    from cadre_app.cli.render import plain

    def text(value: Any) -> str:  # a path like `app/[id]/page.ts` is no markup, a file's ESC no command
        return escape(plain(value))

    console = Console()
    for note in result.notes:
        console.print(f"[yellow]{text(note)}[/]")
    for hit in result.hits:
        where = f"{hit.path}:{hit.start_line}-{hit.end_line}"
        console.print(f"[bold cyan]{text(where)}[/] [green]{text(hit.symbol)}[/]  [dim]{text(hit.why)}[/]")
        console.print(plain(hit.snippet), markup=False, highlight=False)
        console.print()
    console.print(f"[dim]{len(result.hits)} hits in {result.took_ms:.0f} ms; {result.index['files']} files indexed[/]")
    return 0


class _progress_bar:
    """A rich progress bar on stderr, shown while the first index is built."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True,
        )  # fmt: skip
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            if total < 50:
                return
            self.bar.start()
            self.task = self.bar.add_task("index", total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.task is not None:
            self.bar.stop()
