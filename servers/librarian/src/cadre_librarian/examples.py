"""`find_examples`: usages of a symbol or snippet in the installed packages and on GitHub. No model."""

from __future__ import annotations

import re
import time
from typing import Any

import anyio

from cadre_core.errors import CadreError
from cadre_core.files import read_text
from cadre_librarian.installed import MAX_FILE_BYTES, Installed
from cadre_librarian.library import Library
from cadre_librarian.reading import as_result
from cadre_librarian.sources import Excerpt, slice_lines

SCAN_SECONDS = 8.0
CONTEXT_LINES = 3
EXTENSIONS = {
    "python": (".py", ".pyi"),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "typescript": (".ts", ".tsx", ".mts", ".cts", ".d.ts"),
}
DEFINITION = re.compile(r"^\s*(?:async\s+)?(?:def|class|function|export\s+(?:default\s+)?(?:function|class|const))\s")


def _needle(symbol_or_snippet: str) -> str:
    lines = [line.strip() for line in symbol_or_snippet.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def scan_installed(
    installed: Installed, needle: str, language: str | None, limit: int
) -> tuple[list[Excerpt], list[str]]:
    """Lines using `needle` in installed packages (not its definitions or imports), at most one per file,
    spread across packages; the scan stops after SCAN_SECONDS with a note."""
    suffixes = EXTENSIONS.get((language or "").lower()) or tuple(s for v in EXTENSIONS.values() for s in v)
    deadline = time.monotonic() + SCAN_SECONDS
    per_package: list[list[Excerpt]] = []
    notes: list[str] = []
    for package in installed.packages():
        found: list[Excerpt] = []
        files = [*package.files, *(f for d in package.dirs for f in sorted(d.rglob("*")))]
        for file in files:
            if time.monotonic() > deadline:
                notes.append(f"local scan stopped after {SCAN_SECONDS:.0f} s; pass language to narrow it")
                break
            if not file.name.endswith(suffixes) or "node_modules" in file.parts[len(package.base.parts) :]:
                continue
            try:
                if file.stat().st_size > MAX_FILE_BYTES:
                    continue
                text = read_text(file)
            except OSError:
                continue
            if needle not in text:
                continue
            lines = text.split("\n")
            for number, line in enumerate(lines, start=1):
                if needle in line and not DEFINITION.match(line) and not line.lstrip().startswith(("import ", "from ")):
                    start, end, span = slice_lines(text, number - CONTEXT_LINES, number + CONTEXT_LINES)
                    found.append(installed.excerpt(package, file.resolve(), start, end, span))
                    break
            if len(found) >= limit:
                break
        if found:
            per_package.append(found)
        if notes:
            break
    spread = [e for rank in range(limit) for group in per_package if rank < len(group) for e in [group[rank]]]
    return spread[:limit], notes


async def find_examples(
    library: Library, installed: Installed, *, symbol_or_snippet: str, language: str | None = None, limit: int = 10
) -> dict[str, Any]:
    """Examples from GitHub code search (with a token) and the installed packages, each citable."""
    needle = _needle(symbol_or_snippet or "")
    if len(needle) < 3:
        raise CadreError("pass a symbol or snippet of at least 3 characters, e.g. 'httpx.AsyncClient(' ")
    limit = max(1, min(int(limit), 30))
    notes: list[str] = []
    github: list[Excerpt] = []
    if library.has_github_token:
        query = f'"{needle}"' if " " in needle else needle
        try:
            github = await library.github.search_code(query, language=language, limit=limit)
        except CadreError as exc:
            notes.append(f"GitHub code search failed: {exc}")
    else:
        notes.append("GitHub code search skipped: it needs a token; set GITHUB_TOKEN or run `gh auth login`")
    local, scan_notes = await anyio.to_thread.run_sync(lambda: scan_installed(installed, needle, language, limit))
    examples = [as_result(e, []) for e in [*github, *local][:limit]]
    out: dict[str, Any] = {"examples": examples, "github": len(github), "local": len(local)}
    if notes or scan_notes:
        out["notes"] = [*notes, *scan_notes]
    return out
