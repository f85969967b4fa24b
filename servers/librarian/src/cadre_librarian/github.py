"""GitHub as a source: repositories, code search, files at a ref, trees, commits, compares and releases.

Every read is cached on disk (see `github_cache`) and rate-limit aware (see `github_http`); excerpts
carry blob URLs with line anchors a person can open.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx2

from cadre_core.files import is_secret_path
from cadre_librarian.github_http import AUTH_FIX, JSON, RAW, TEXT_MATCH, GitHubHTTP, ReplyTooLarge, discover_token
from cadre_librarian.github_shapes import check_repo, clean_path, clip, commit_summary, hit_ref, iso_date, locate
from cadre_librarian.sources import Excerpt, NotFoundError, SourceError, TooLargeError, slice_lines

__all__ = ["GitHub", "check_repo", "locate", "token_from_env"]

MAX_FILE_BYTES = 1_000_000
CONTEXT_LINES = 3
PATCH_CHARS = 3000
BODY_CHARS = 4000
PARALLEL_FETCHES = 4


def token_from_env(env: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """GITHUB_TOKEN, else GH_TOKEN, else the gh CLI's hosts.yml token; None when there is none."""
    return discover_token(os.environ if env is None else env, home)[0]


class GitHub:
    """The GitHub REST API as the librarian reads it. `token=None` reads anonymously (see `from_env`)."""

    def __init__(
        self,
        *,
        token: str | None = None,
        base_url: str = "https://api.github.com",
        web_url: str = "https://github.com",
        cache_dir: Path | str | None = None,
        client: httpx2.AsyncClient | None = None,
        timeout: float = 15.0,
        fresh_for: float = 600,
        token_source: str = "",
        cache_url: str | None = None,
    ):
        self.http = GitHubHTTP(
            token=token,
            token_source=token_source,
            base_url=base_url,
            cache_dir=cache_dir,
            client=client,
            timeout=timeout,
            fresh_for=fresh_for,
            cache_url=cache_url,
        )
        self.web_url = web_url.rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, home: Path | None = None, **kwargs: Any) -> GitHub:
        """A client with the token found by `token_from_env` (errors then name where it came from)."""
        token, source = discover_token(os.environ if env is None else env, home)
        return cls(token=token, token_source=source, **kwargs)

    @property
    def requests_made(self) -> int:
        """Requests actually sent over the network (cache hits do not count)."""
        return self.http.requests_made

    @property
    def has_token(self) -> bool:
        return self.http.has_token

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> GitHub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def blob_url(self, repo: str, ref: str, path: str, start: int | None = None, end: int | None = None) -> str:
        url = f"{self.web_url}/{repo}/blob/{quote(ref, safe='/')}/{quote(path, safe='/')}"
        return url if start is None else f"{url}#L{start}-L{end if end is not None else start}"

    async def _paginate(
        self, path: str, params: dict[str, Any], limit: int, *, what: str, accept: str = JSON, key: str | None = None
    ) -> list[dict[str, Any]]:
        """Items across pages (Link rel="next") until `limit` are collected or the pages end."""
        limit = max(1, int(limit))
        url: str | None = self.http.url(path, {**params, "per_page": min(100, limit)})
        items: list[dict[str, Any]] = []
        while url and len(items) < limit:
            reply = await self.http.get(url, accept=accept, what=what)
            data = reply.json()
            page = (data.get(key) or []) if key else data
            if not isinstance(page, list) or not page:
                break
            items.extend(page)
            url = reply.next_url
        return items[:limit]

    # -- repositories -------------------------------------------------------------------------

    async def repo_info(self, repo: str) -> dict[str, Any]:
        """Name, description, default branch, stars, licence, topics, archived/private flags and URL."""
        repo = check_repo(repo)
        data = (await self.http.get(f"/repos/{repo}", what=f"repository {repo}")).json()
        return {
            "full_name": data.get("full_name", repo),
            "description": data.get("description"),
            "default_branch": data.get("default_branch"),
            "stars": data.get("stargazers_count"),
            "forks": data.get("forks_count"),
            "language": data.get("language"),
            "license": (data.get("license") or {}).get("spdx_id"),
            "topics": data.get("topics") or [],
            "archived": bool(data.get("archived")),
            "private": bool(data.get("private")),
            "pushed_at": data.get("pushed_at"),
            "url": data.get("html_url") or f"{self.web_url}/{repo}",
        }

    async def default_branch(self, repo: str) -> str:
        branch: str = (await self.repo_info(repo))["default_branch"]
        if not branch:
            raise SourceError(f"{repo} has no default branch (an empty repository?); pass a ref")
        return branch

    async def _ref(self, repo: str, ref: str | None) -> str:
        ref = (ref or "").strip()
        return ref or await self.default_branch(repo)

    async def search_repositories(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Repositories matching a GitHub search query, best match first."""
        items = await self._paginate(
            "/search/repositories", {"q": query}, limit, key="items", what=f"repository search for {query!r}"
        )
        return [
            {
                "full_name": r.get("full_name"),
                "description": r.get("description"),
                "stars": r.get("stargazers_count"),
                "url": r.get("html_url"),
                "default_branch": r.get("default_branch"),
                "pushed_at": r.get("pushed_at"),
            }
            for r in items
        ]

    # -- files ----------------------------------------------------------------------------------

    async def _file_text(self, repo: str, path: str, ref: str) -> str:
        where = f"'{path}' at '{ref}' in {repo}"
        try:
            reply = await self.http.get(
                f"/repos/{repo}/contents/{quote(path, safe='/')}",
                {"ref": ref},
                accept=RAW,
                what=f"file {where}",
                max_bytes=MAX_FILE_BYTES,
            )
        except ReplyTooLarge as exc:
            size = f"{exc.size / 1e6:.1f} MB" if exc.size is not None else "larger than 1 MB"
            raise TooLargeError(
                f"{where} is {size}, over the 1 MB the GitHub API source reads; read it from a clone with "
                "clone_read, or find the part you need with clone_search"
            ) from None
        body = reply.body
        if reply.headers.get("content-type", "").startswith("application/json"):
            data = _json_or_none(body)
            if isinstance(data, list) and all(isinstance(e, dict) and "path" in e and "type" in e for e in data):
                raise SourceError(
                    f"{where} is a directory; list it with github_tree and read one of its files "
                    "(github_read, or read_source with that file's path)"
                )
            if isinstance(data, dict) and data.get("type") == "submodule":
                raise SourceError(
                    f"{where} is a submodule of {data.get('submodule_git_url') or 'another repository'}; read it there"
                )
        if b"\0" in body[:8192]:
            raise SourceError(f"{where} is a binary file; only text files can be read")
        return body.decode("utf-8", errors="replace")

    async def read_file(
        self, repo: str, path: str, ref: str | None = None, start_line: int = 1, end_line: int | None = None
    ) -> Excerpt:
        """Lines of one file at `ref` (default: the default branch); at most 400 lines per call."""
        repo, path = check_repo(repo), clean_path(path)
        if not path:
            raise SourceError("pass the path of a file in the repository; github_tree lists them")
        if is_secret_path(path):
            raise SourceError(f"'{path}' looks like a secret file and is not read")
        ref = await self._ref(repo, ref)
        text = await self._file_text(repo, path, ref)
        start, end, lines = slice_lines(text, start_line, end_line)
        total = len(text.split("\n")) - (1 if text.endswith("\n") else 0)
        return Excerpt(
            source="github",
            package_or_repo=repo,
            version_or_ref=ref,
            path=path,
            start_line=start,
            end_line=end,
            text=lines,
            url=self.blob_url(repo, ref, path, start, end),
            extra={"total_lines": total},
        )

    async def tree(self, repo: str, ref: str | None = None, path: str = "", *, limit: int = 2000) -> dict[str, Any]:
        """Files and folders under `path` at `ref` (recursive); `truncated` when GitHub or `limit` cut the list."""
        repo, prefix = check_repo(repo), clean_path(path)
        ref = await self._ref(repo, ref)
        data = (
            await self.http.get(
                f"/repos/{repo}/git/trees/{quote(ref, safe='')}", {"recursive": 1}, what=f"tree of '{ref}' in {repo}"
            )
        ).json()
        kinds = {"tree": "dir", "blob": "file", "commit": "submodule"}
        entries = [
            {"path": e["path"], "type": kinds.get(e.get("type"), e.get("type")), "size": e.get("size")}
            for e in data.get("tree") or []
            if not prefix or e.get("path", "").startswith(prefix + "/")
        ]
        if prefix and not entries:
            if any(e.get("path") == prefix for e in data.get("tree") or []):
                raise SourceError(
                    f"'{prefix}' at '{ref}' in {repo} is a file; read it with github_read (or read_source)"
                )
            if not data.get("truncated"):
                raise NotFoundError(f"GitHub has no folder '{prefix}' at '{ref}' in {repo}; check the path")
        return {
            "repo": repo,
            "ref": ref,
            "path": prefix,
            "sha": data.get("sha"),
            "entries": entries[: max(0, limit)],
            "count": len(entries),
            "truncated": bool(data.get("truncated")) or len(entries) > limit,
            "url": f"{self.web_url}/{repo}/tree/{quote(ref, safe='/')}"
            + (f"/{quote(prefix, safe='/')}" if prefix else ""),
        }

    # -- code search ----------------------------------------------------------------------------

    async def search_code(
        self, query: str, *, repo: str | None = None, language: str | None = None, limit: int = 10
    ) -> list[Excerpt]:
        """Code search hits as excerpts: the first text match with ~3 lines of context at real line numbers."""
        if not self.has_token:
            raise SourceError(f"GitHub code search needs a token on the REST API; {AUTH_FIX}")
        q = " ".join(
            p for p in (query.strip(), repo and f"repo:{check_repo(repo)}", language and f"language:{language}") if p
        )
        items = await self._paginate(
            "/search/code", {"q": q}, limit, key="items", accept=TEXT_MATCH, what=f"code search for {q!r}"
        )
        found: list[Excerpt | None] = [None] * len(items)
        limiter = anyio.CapacityLimiter(PARALLEL_FETCHES)

        async def one(i: int, item: dict[str, Any]) -> None:
            async with limiter:
                found[i] = await self._hit(item)

        async with anyio.create_task_group() as tg:
            for i, item in enumerate(items):
                tg.start_soon(one, i, item)
        return [e for e in found if e is not None]

    async def _hit(self, item: dict[str, Any]) -> Excerpt | None:
        repo = (item.get("repository") or {}).get("full_name")
        path = item.get("path")
        if not repo or not path:
            return None
        ref = hit_ref(item)
        fragments = [m for m in item.get("text_matches") or [] if m.get("property", "content") == "content"]
        fragment = fragments[0].get("fragment", "") if fragments else ""
        matches = (fragments[0].get("matches") or []) if fragments else []
        base = Excerpt("github", repo, ref, path, 1, 1, "", url=item.get("html_url"), score=item.get("score"))
        why, spot, text = "the hit names no commit", None, None
        if ref:
            try:
                text = await self._file_text(repo, path, ref)
            except SourceError as exc:
                why = str(exc)
            else:
                why, spot = "the fragment is not in the file", locate(text, fragment, matches)
        if text is None or spot is None or not ref:  # a text is only fetched with a ref
            if not fragment:
                return None
            n = len(fragment.split("\n"))
            return replace(base, end_line=n, text=fragment, extra={"located": False, "why": why})
        start, end, lines = slice_lines(text, spot[0] - CONTEXT_LINES, spot[1] + CONTEXT_LINES)
        return base.with_lines(start, end, lines, url=self.blob_url(repo, ref, path, start, end))

    # -- history ----------------------------------------------------------------------------------

    async def commits(
        self,
        repo: str,
        *,
        path: str | None = None,
        ref: str | None = None,
        since: datetime | str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Newest-first commits on `ref` (default branch if None), optionally touching `path`, since a date."""
        repo = check_repo(repo)
        params = {"sha": ref or None, "path": clean_path(path) if path else None, "since": iso_date(since)}
        what = f"commits of {repo}" + (f" at '{ref}'" if ref else "") + (f" touching '{path}'" if path else "")
        return [commit_summary(c) for c in await self._paginate(f"/repos/{repo}/commits", params, limit, what=what)]

    async def compare(
        self, repo: str, base: str, head: str, *, limit_files: int = 100, limit_commits: int = 100
    ) -> dict[str, Any]:
        """What `head` adds over `base` (tags, branches or SHAs): commits and changed files with clipped patches."""
        repo = check_repo(repo)
        spec = f"{quote(base.strip(), safe='')}...{quote(head.strip(), safe='')}"
        data = (
            await self.http.get(
                f"/repos/{repo}/compare/{spec}",
                what=f"comparison {base}...{head} in {repo} (both refs must exist and share history)",
            )
        ).json()
        commits = data.get("commits") or []
        files = data.get("files") or []
        out_files = []
        for f in files[: max(0, limit_files)]:
            patch, clipped = clip(f.get("patch"), PATCH_CHARS)
            entry = {
                "filename": f.get("filename"),
                "status": f.get("status"),
                "additions": f.get("additions"),
                "deletions": f.get("deletions"),
                "changes": f.get("changes"),
                "patch": patch or None,
                "patch_truncated": clipped,
            }
            if f.get("previous_filename"):
                entry["previous_filename"] = f["previous_filename"]
            out_files.append(entry)
        total = data.get("total_commits", len(commits))
        return {
            "repo": repo,
            "base": base,
            "head": head,
            "status": data.get("status"),
            "ahead_by": data.get("ahead_by"),
            "behind_by": data.get("behind_by"),
            "total_commits": total,
            "commits": [commit_summary(c) for c in commits[: max(0, limit_commits)]],
            "commits_truncated": total > min(len(commits), limit_commits),
            "files": out_files,
            "files_total": len(files),
            "files_truncated": len(files) > limit_files or len(files) >= 300,
            "url": data.get("html_url") or f"{self.web_url}/{repo}/compare/{spec}",
        }

    async def releases(self, repo: str, limit: int = 10) -> list[dict[str, Any]]:
        """Newest-first releases with their notes (clipped to ~4000 characters)."""
        repo = check_repo(repo)
        out = []
        for r in await self._paginate(f"/repos/{repo}/releases", {}, limit, what=f"releases of {repo}"):
            body, clipped = clip(r.get("body"), BODY_CHARS)
            out.append(
                {
                    "tag": r.get("tag_name"),
                    "name": r.get("name"),
                    "published_at": r.get("published_at"),
                    "prerelease": bool(r.get("prerelease")),
                    "draft": bool(r.get("draft")),
                    "body": body,
                    "body_truncated": clipped,
                    "url": r.get("html_url"),
                }
            )
        return out


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
