"""`read_source`: a file of an installed package or a GitHub repository, with line numbers. No model."""

from __future__ import annotations

from typing import Any

import anyio

from cadre_core.errors import clip
from cadre_librarian.evidence import anchored
from cadre_librarian.github_shapes import is_repo_name
from cadre_librarian.installed import Installed, source_repo
from cadre_librarian.library import Library
from cadre_librarian.sources import (
    Excerpt,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    SourceError,
    TooLargeError,
)


def as_result(excerpt: Excerpt, notes: list[str]) -> dict[str, Any]:
    out = {**excerpt.citation(), "url": anchored(excerpt.url, excerpt.source, excerpt.start_line, excerpt.end_line),
           "text": excerpt.numbered()}  # fmt: skip
    total = excerpt.extra.get("total_lines")
    if total:
        out["total_lines"] = total
        if excerpt.end_line < total:
            notes = [*notes, f"showing lines {excerpt.start_line}-{excerpt.end_line} of {total}; "
                             f"pass start_line={excerpt.end_line + 1} for more"]  # fmt: skip
    if notes:
        out["notes"] = notes
    return out


async def read_source(
    library: Library,
    installed: Installed,
    *,
    target: str,
    path: str,
    ref: str | None = None,
    version: str | None = None,
    start_line: int | None = None,
    end_line: int | None = None,
) -> dict[str, Any]:
    """Lines of `path` in `target` (a package name or owner/repo); at most 400 lines per call."""
    target = (target or "").strip()
    if not target or not (path or "").strip():
        raise SourceError("pass target (a package name or owner/repo) and path (a file inside it)")
    start = start_line or 1
    if is_repo_name(target) and not installed.has(target):
        return await _from_github(library, target, path, ref or version, start, end_line, [])
    package = await anyio.to_thread.run_sync(lambda: installed.find(target))
    wanted = (version or ref or "").lstrip("v")
    if wanted and wanted != package.version:
        repo = source_repo(package)
        if not repo:
            raise SourceError(
                f"{package.name} {package.version} is installed, not {wanted}, and its metadata names no GitHub "
                "repository; pass owner/repo as target with ref"
            )
        note = f"{package.name} {package.version} is installed; read {wanted} from {repo} on GitHub"
        for tag in (f"v{wanted}", wanted):
            try:
                return await _from_github(library, repo, path, tag, start, end_line, [note])
            except NotFoundError:
                continue
        raise NotFoundError(
            f"{repo} has no tag v{clip(wanted)} or {clip(wanted)} with {clip(path)}; check the version or the path"
        )
    excerpt = await anyio.to_thread.run_sync(lambda: installed.read(package.name, path, start, end_line))
    return as_result(excerpt, [])


async def _from_github(
    library: Library, repo: str, path: str, ref: str | None, start: int, end: int | None, notes: list[str]
) -> dict[str, Any]:
    """GitHub's API first; a shallow clone when the API is rate-limited, unreachable or the file too large."""
    try:
        return as_result(await library.github.read_file(repo, path, ref, start, end), notes)
    except (NetworkError, RateLimitedError, TooLargeError) as exc:
        excerpt = await library.clones.read(repo, path, ref=ref, start_line=start, end_line=end)
        return as_result(excerpt, [*notes, f"read from a shallow clone: the GitHub API failed ({exc})"])
