"""`find_examples`: usages of a symbol or snippet in the installed packages and on GitHub. No model.

GitHub code search and the local scan run side by side; either failing or timing out leaves a note and
the other's examples. A GitHub fragment that could not be placed in its file is shown without line
numbers (and without a #L anchor): it cannot be cited until the file is read."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog

from cadre_core.errors import CadreError
from cadre_core.files import read_text
from cadre_librarian.installed import MAX_FILE_BYTES, Installed
from cadre_librarian.library import Library
from cadre_librarian.reading import as_result
from cadre_librarian.sources import Excerpt, slice_lines

log = structlog.get_logger("cadre.librarian.examples")

SCAN_SECONDS = 8.0
GITHUB_SECONDS = 20.0
CONTEXT_LINES = 3
UNPLACED = "lines unknown; read the file to cite it"
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
    """Lines using `needle` in installed packages' own files (not its definitions or imports), at most one
    per file, spread across packages; the scan stops after SCAN_SECONDS with a note."""
    suffixes = EXTENSIONS.get((language or "").lower()) or tuple(s for v in EXTENSIONS.values() for s in v)
    deadline = time.monotonic() + SCAN_SECONDS
    per_package: list[list[Excerpt]] = []
    notes: list[str] = []
    for package in installed.packages():
        found: list[Excerpt] = []
        for file in package.source_files():
            if time.monotonic() > deadline:
                notes.append(f"local scan stopped after {SCAN_SECONDS:.0f} s; pass language to narrow it")
                break
            rel = package.rel(file)
            if not file.name.endswith(suffixes) or rel is None or "node_modules" in rel.split("/"):
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
                    found.append(installed.excerpt(package, file, start, end, span))
                    break
            if len(found) >= limit:
                break
        if found:
            per_package.append(found)
        if notes:
            break
    spread = [e for rank in range(limit) for group in per_package if rank < len(group) for e in [group[rank]]]
    return spread[:limit], notes


def example_result(excerpt: Excerpt) -> dict[str, Any]:
    """One example as the tool returns it; a fragment GitHub could not place has no lines and no anchor."""
    if excerpt.extra.get("located") is not False:
        return as_result(excerpt, [])
    url = excerpt.url.split("#", 1)[0] if excerpt.url else None
    return {**excerpt.citation(), "start_line": None, "end_line": None, "url": url, "text": excerpt.text,
            "notes": [UNPLACED]}  # fmt: skip


async def _github(library: Library, needle: str, language: str | None, limit: int) -> tuple[list[Excerpt], str]:
    """GitHub code search hits, or none and why (no token, an error, or no answer within GITHUB_SECONDS)."""
    try:
        if not library.has_github_token:
            return [], "GitHub code search skipped: it needs a token; set GITHUB_TOKEN or run `gh auth login`"
        query = f'"{needle}"' if " " in needle else needle
        with anyio.fail_after(GITHUB_SECONDS):
            return await library.github.search_code(query, language=language, limit=limit), ""
    except TimeoutError:
        return [], f"GitHub code search gave no answer within {GITHUB_SECONDS:g} s; showing local examples only"
    except CadreError as exc:
        return [], f"GitHub code search failed: {exc}"
    except Exception as exc:  # a malformed reply or a socket error must not lose the local examples
        log.warning("github_code_search_failed", error=repr(exc), exc_info=True)
        return [], f"GitHub code search failed ({type(exc).__name__}: {exc}); showing local examples only"


async def _local(
    installed: Installed, needle: str, language: str | None, limit: int
) -> tuple[list[Excerpt], list[str]]:
    try:
        await installed.ready()
        return await anyio.to_thread.run_sync(
            lambda: scan_installed(installed, needle, language, limit), abandon_on_cancel=True
        )
    except Exception as exc:
        log.warning("local_examples_scan_failed", error=repr(exc), exc_info=True)
        return [], [f"scanning the installed packages failed ({type(exc).__name__}: {exc})"]


async def find_examples(
    library: Library, installed: Installed, *, symbol_or_snippet: str, language: str | None = None, limit: int = 10
) -> dict[str, Any]:
    """Examples from GitHub code search (with a token) and the installed packages, searched side by side."""
    needle = _needle(symbol_or_snippet or "")
    if len(needle) < 3:
        raise CadreError("pass a symbol or snippet of at least 3 characters, e.g. 'httpx.AsyncClient(' ")
    limit = max(1, min(int(limit), 30))
    results: dict[str, Any] = {}

    async def run(key: str, source: Callable[..., Awaitable[object]], where: object) -> None:
        results[key] = await source(where, needle, language, limit)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "github", _github, library)
        tg.start_soon(run, "local", _local, installed)
    github, github_note = results["github"]
    local, scan_notes = results["local"]
    examples = [example_result(e) for e in [*github, *local][:limit]]
    out: dict[str, Any] = {"examples": examples, "github": len(github), "local": len(local)}
    notes = [*([github_note] if github_note else []), *scan_notes]
    if notes:
        out["notes"] = notes
    return out
