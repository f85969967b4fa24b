"""Read-only workspace tools the oracle may call: read_file, grep, list_dir.

Everything is confined to the workspace roots, read through the core's reading gate (no secret,
binary or non-regular file, capped sizes), and redacted with the whole file in view before it is
returned to the model: grep matches against the redacted text, so a hit inside a secret shows nothing.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

from cadre_core.errors import CadreError, WorkspaceError
from cadre_core.files import SKIP_DIRS, IgnoreRules, is_secret_path, is_text_file, read_lines, read_text
from cadre_core.models.base import ToolCall, ToolDefinition
from cadre_core.redact import redact
from cadre_core.workspace import Workspace

MAX_LINES = 400
MAX_MATCHES = 60
MAX_FILES_SCANNED = 5000
MAX_FILE_BYTES = 1_000_000
MAX_LINE_CHARS = 2_000
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[+*}][^)]*\)[+*{]")


GREP_BUDGET_S = 5.0
"""What all of one grep's regex searches may take together (a pattern can backtrack for hours on one line)."""


class _TimedPattern:
    """A compiled `regex` pattern whose searches share one time budget; past it, a clear error."""

    def __init__(self, compiled: Any, pattern: str):
        self.compiled, self.pattern = compiled, pattern
        self.spent = 0.0

    def search(self, text: str) -> Any:
        started = time.monotonic()
        try:  # `regex` stops at `timeout`, and releases the GIL with `concurrent`, where `re` would stall
            return self.compiled.search(text, timeout=max(GREP_BUDGET_S - self.spent, 0.001), concurrent=True)
        except TimeoutError:
            raise CadreError(
                f"the pattern {self.pattern[:80]!r} is too slow to match (it backtracks); use a simpler pattern "
                "or a plain word"
            ) from None
        finally:
            self.spent += time.monotonic() - started


def _safe_regex(pattern: str) -> _TimedPattern:
    """The pattern as a regex with a time budget, or as a literal when it is invalid or could backtrack for ever."""
    import regex

    if len(pattern) > 200 or _NESTED_QUANTIFIER.search(pattern):
        return _TimedPattern(regex.compile(regex.escape(pattern)), pattern)
    try:
        return _TimedPattern(regex.compile(pattern), pattern)
    except regex.error:
        return _TimedPattern(regex.compile(regex.escape(pattern)), pattern)


TOOLS = [
    ToolDefinition(
        "read_file",
        "Read a workspace file with line numbers (at most 400 lines per call).",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "start_line": {"type": "integer"},
                "end_line": {"type": "integer"},
            },
            "required": ["path"],
        },
    ),
    ToolDefinition(
        "grep",
        "Search workspace files for a regular expression; returns path:line: text.",
        {
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
            "required": ["pattern"],
        },
    ),
    ToolDefinition(
        "list_dir",
        "List a workspace directory.",
        {"type": "object", "properties": {"path": {"type": "string"}}, "required": []},
    ),
]


def _readable(ws: Workspace, path: Path) -> None:
    if is_secret_path(ws.relative(path)):
        raise WorkspaceError(f"'{ws.relative(path)}' looks like a secret file and is not readable here")
    rules = IgnoreRules(ws.primary)
    rel = ws.relative(path)
    if rel != "." and rules.ignored(rel, path.is_dir()):
        raise WorkspaceError(f"'{rel}' is ignored by the project's ignore files")


def read_file(ws: Workspace, path: str, start_line: int = 1, end_line: int | None = None) -> str:
    """Numbered lines of one file."""
    real = ws.resolve(path)
    if not real.is_file():
        raise WorkspaceError(f"'{path}' is not a file in the workspace; use list_dir to see what exists")
    _readable(ws, real)
    lines, start, total = read_lines(real, int(start_line or 1), end_line and int(end_line), max_lines=MAX_LINES)
    if not lines and total:
        raise WorkspaceError(f"'{path}' has {total} lines; pass a start_line of at most {total}")
    end = start + len(lines) - 1
    body = "\n".join(f"{n:>6} | {line}" for n, line in enumerate(lines, start))
    of = f"of {total}" if total is not None else "of a file over 1 MB"
    more = f"\n[more lines; ask with start_line={end + 1}]" if total is None or end < total else ""
    return f"=== {ws.relative(real)} (lines {start}-{end} {of}) ===\n{body}{more}"


def grep(ws: Workspace, pattern: str, path: str = ".") -> str:
    """Matching lines under `path`, at most 60."""
    regex = _safe_regex(pattern)
    top = ws.resolve(path)
    rules = IgnoreRules(ws.primary)
    matches: list[str] = []
    scanned = 0
    for file in _walk(ws, top, rules):
        scanned += 1
        if scanned > MAX_FILES_SCANNED or len(matches) >= MAX_MATCHES:
            break
        try:
            text = read_text(file)
        except OSError:
            continue
        if not any(len(line) <= MAX_LINE_CHARS and regex.search(line) for line in text.split("\n")):
            continue
        # match the redacted file, so a hit inside a secret (a key-body line) reveals nothing
        for number, line in enumerate(redact(text, filename=file.name)[0].split("\n"), 1):
            if len(line) <= MAX_LINE_CHARS and regex.search(line):
                matches.append(f"{ws.relative(file)}:{number}: {line.strip()[:200]}")
                if len(matches) >= MAX_MATCHES:
                    break
    return "\n".join(matches) or f"no matches for {pattern!r} under {path}"


def _walk(ws: Workspace, top: Path, rules: IgnoreRules) -> Iterator[Path]:
    if top.is_file():
        _readable(ws, top)
        yield top
        return
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".") and not _ignored(ws, rules, here / d)
        )
        for name in sorted(filenames):
            file = here / name
            if is_secret_path(ws.relative(file)) or file.is_symlink() or _ignored(ws, rules, file):
                continue
            try:
                size = file.stat().st_size
            except OSError:
                continue
            if size <= MAX_FILE_BYTES and is_text_file(file):  # never opens a FIFO or a secret
                yield file


def _ignored(ws: Workspace, rules: IgnoreRules, path: Path) -> bool:
    rel = ws.relative(path)
    return rel != "." and rules.ignored(rel, path.is_dir())


def list_dir(ws: Workspace, path: str = ".") -> str:
    """Directory entries, folders first, ignored and secret files left out."""
    real = ws.resolve(path or ".")
    if not real.is_dir():
        raise WorkspaceError(f"'{path}' is not a directory in the workspace")
    rules = IgnoreRules(ws.primary)
    entries = []
    for child in sorted(real.iterdir(), key=lambda p: (not p.is_dir(), p.name)):
        if child.name in SKIP_DIRS or is_secret_path(ws.relative(child)) or _ignored(ws, rules, child):
            continue
        entries.append(child.name + ("/" if child.is_dir() else ""))
    return "\n".join(entries) or "(empty)"


async def run_tool(ws: Workspace, call: ToolCall) -> tuple[str, bool]:
    """(result text, is_error) for one tool call; failures are reported to the model, not raised."""
    functions: dict[str, Callable[..., str]] = {"read_file": read_file, "grep": grep, "list_dir": list_dir}
    function = functions.get(call.name)
    if function is None:
        return f"unknown tool {call.name}; use read_file, grep or list_dir", True
    try:
        return await anyio.to_thread.run_sync(lambda: function(ws, **call.arguments)), False
    except (CadreError, TypeError, ValueError, OSError) as exc:
        return f"error: {exc}", True
