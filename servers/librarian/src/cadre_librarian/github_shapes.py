"""Pure helpers of the GitHub source: repository names, paths, GitHub JSON to summaries, code-search line lookup."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cadre_core.errors import clip as clip_input
from cadre_librarian.sources import SourceError

REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
"""GitHub's `owner/name`: an owner of up to 39 letters, digits and hyphens, a name of up to 100 of those,
`.` and `_`. The one repository-name check of the librarian."""
_GITHUB_PREFIX = re.compile(r"(?:(?:https?://)?(?:www\.)?github\.com/|git@github\.com:|github:)", re.IGNORECASE)


def is_repo_name(text: str) -> bool:
    """True when `text` is written as plain `owner/name` (not a URL): how a library names a repository."""
    return bool(REPO.fullmatch(text)) and ".." not in text and not text.endswith("/.")


def check_repo(repo: str) -> str:
    """`owner/name` from `owner/name`, a GitHub URL, `git@github.com:owner/name` or `owner/name.git`;
    a SourceError naming the fix otherwise."""
    text = _GITHUB_PREFIX.sub("", str(repo or "").strip(), count=1).strip("/").removesuffix(".git")
    if not is_repo_name(text):
        raise SourceError(f"'{clip_input(repo)}' is not a GitHub repository; pass it as owner/name, e.g. encode/httpx")
    return text


def clean_path(path: str) -> str:
    return "/".join(p for p in str(path).strip().split("/") if p and p != ".")


def clip(text: str | None, limit: int) -> tuple[str, bool]:
    text = text or ""
    return (text, False) if len(text) <= limit else (text[:limit].rstrip() + "\n… (truncated)", True)


def iso_date(since: datetime | str | None) -> str | None:
    if since is None or isinstance(since, str):
        return since
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit_summary(c: dict[str, Any]) -> dict[str, Any]:
    info = c.get("commit") or {}
    who = info.get("author") or {}
    return {
        "sha": c.get("sha"),
        "date": (info.get("committer") or {}).get("date") or who.get("date"),
        "author": (c.get("author") or {}).get("login") or who.get("name"),
        "message": (info.get("message") or "").split("\n", 1)[0],
        "url": c.get("html_url"),
    }


def locate(text: str, fragment: str, matches: list[dict[str, Any]]) -> tuple[int, int] | None:
    """1-based (first, last) lines of a text-match fragment's matches inside the file, or None if it is not there."""
    pos = text.find(fragment) if fragment else -1
    if pos >= 0:
        spans = [m["indices"] for m in matches if len(m.get("indices") or ()) == 2] or [[0, len(fragment)]]
        first, last = pos + spans[0][0], pos + max(spans[-1][1] - 1, spans[-1][0])
        return text.count("\n", 0, first) + 1, text.count("\n", 0, last) + 1
    for needle in sorted((ln.strip() for ln in fragment.split("\n")), key=len, reverse=True)[:3]:
        if len(needle) >= 4 and (pos := text.find(needle)) >= 0:
            line = text.count("\n", 0, pos) + 1
            return line, line
    return None


def hit_ref(item: dict[str, Any]) -> str | None:
    """The commit a code-search hit was indexed at: `?ref=` of its API URL, else the blob URL's ref."""
    ref = parse_qs(urlsplit(item.get("url") or "").query).get("ref")
    if ref:
        return ref[0]
    match = re.search(r"/blob/([0-9a-f]{40})/", item.get("html_url") or "")
    return match.group(1) if match else None
