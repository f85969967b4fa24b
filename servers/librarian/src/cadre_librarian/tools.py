"""The tools the librarian model calls during research; every excerpt they show gets an evidence id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from cadre_core.errors import CadreError
from cadre_core.models.base import ToolCall, ToolDefinition
from cadre_librarian.evidence import Evidence
from cadre_librarian.installed import Installed, search_package, source_repo
from cadre_librarian.library import Library, release_excerpt
from cadre_librarian.sources import Excerpt

log = structlog.get_logger("cadre.librarian")
TOOL_TIMEOUT_S = 60.0
CLONE_TIMEOUT_S = 150.0
"""Clone tools may first make a shallow clone (git's own limit is 120 s per step); later calls reuse it."""
MAX_RESULT_CHARS = 16_000


@dataclass
class Desk:
    """What one research call works with."""

    library: Library
    installed: Installed
    evidence: Evidence

    def show(self, excerpts: list[Excerpt], empty: str = "no results") -> str:
        if not excerpts:
            return empty
        # no redaction here: Kit.call_model redacts every message before it reaches a provider
        return "\n\n".join(self.evidence.render(e) if citable(e) else uncitable(e) for e in excerpts)


def citable(excerpt: Excerpt) -> bool:
    """False for a code-search fragment that could not be placed in its file (its lines are unknown)."""
    return excerpt.extra.get("located", True) is not False


def uncitable(excerpt: Excerpt) -> str:
    return f"(not citable: read the file to cite it) {excerpt.package_or_repo} {excerpt.path}\n{excerpt.text}"


def _schema(required: list[str], **props: str) -> dict[str, Any]:
    types = {"start_line": "integer", "end_line": "integer"}
    return {
        "type": "object",
        "properties": {name: {"type": types.get(name, "string"), "description": d} for name, d in props.items()},
        "required": required,
    }


async def list_installed(desk: Desk, contains: str = "") -> str:
    packages = desk.installed.packages(contains)
    if not packages:
        return f"no installed package matches '{contains}'"
    shown = [f"{p.name} {p.version} ({p.ecosystem})" for p in packages[:80]]
    more = f"\n... and {len(packages) - 80} more; pass `contains`" if len(packages) > 80 else ""
    return "\n".join(shown) + more


async def search_installed(desk: Desk, package: str, query: str) -> str:
    found = await anyio.to_thread.run_sync(
        lambda: search_package(desk.installed, package, query, 6), abandon_on_cancel=True
    )
    info = desk.installed.find(package)
    repo = source_repo(info)
    head = f"{info.name} {info.version} installed" + (f"; source repo {repo}" if repo else "")
    return head + "\n\n" + desk.show(found, f"no match for '{query}' in {info.name}")


async def read_installed(desk: Desk, package: str, path: str, start_line: int = 1, end_line: int | None = None) -> str:
    excerpt = await anyio.to_thread.run_sync(
        lambda: desk.installed.read(package, path, start_line, end_line), abandon_on_cancel=True
    )
    return desk.show([excerpt])


async def github_search_code(desk: Desk, query: str, repo: str | None = None, language: str | None = None) -> str:
    return desk.show(await desk.library.github.search_code(query, repo=repo, language=language, limit=6))


async def github_search_repos(desk: Desk, query: str) -> str:
    repos = await desk.library.github.search_repositories(query, limit=8)
    return "\n".join(f"{r['full_name']} ★{r.get('stars', 0)} {r.get('description') or ''}".strip() for r in repos) or (
        "no repositories found"
    )


async def github_read(
    desk: Desk, repo: str, path: str, ref: str | None = None, start_line: int = 1, end_line: int | None = None
) -> str:
    return desk.show([await desk.library.github.read_file(repo, path, ref, start_line, end_line)])


async def github_tree(desk: Desk, repo: str, ref: str | None = None, path: str = "") -> str:
    tree = await desk.library.github.tree(repo, ref, path, limit=400)
    entries = [e["path"] + ("/" if e.get("type") == "dir" else "") for e in tree.get("entries", [])]
    note = f"\n(showing {len(entries)} of {tree.get('count')}; pass path to narrow)" if tree.get("truncated") else ""
    return f"{repo}@{tree.get('ref')}\n" + ("\n".join(entries) or "(empty)") + note


async def github_releases(desk: Desk, repo: str) -> str:
    releases = await desk.library.github.releases(repo, limit=8)
    return desk.show([release_excerpt(repo, r) for r in releases], f"{repo} has no releases; try github_compare")


async def github_compare(desk: Desk, repo: str, base: str, head: str) -> str:
    data = await desk.library.github.compare(repo, base, head)
    lines = [f"{repo} {base}...{head}: {data.get('ahead_by', '?')} commits ahead"]
    lines += [f"- {c.get('sha', '')[:10]} {c.get('message', '')}" for c in data.get("commits", [])[:40]]
    lines += [
        f"{f.get('status')} {f.get('filename')} +{f.get('additions', 0)} -{f.get('deletions', 0)}"
        for f in data.get("files", [])[:80]
    ]
    return "\n".join(lines)


async def github_commits(desk: Desk, repo: str, path: str | None = None, ref: str | None = None) -> str:
    commits = await desk.library.github.commits(repo, path=path, ref=ref, limit=20)
    return "\n".join(f"{c['sha'][:10]} {c.get('date', '')} {c.get('message', '')}" for c in commits) or "no commits"


async def clone_search(desk: Desk, repo: str, query: str, ref: str | None = None) -> str:
    return desk.show(await desk.library.clones.search(repo, query, ref=ref, limit=6), f"no match for '{query}'")


async def clone_read(
    desk: Desk, repo: str, path: str, ref: str | None = None, start_line: int = 1, end_line: int | None = None
) -> str:
    return desk.show([await desk.library.clones.read(repo, path, ref=ref, start_line=start_line, end_line=end_line)])


async def fetch_page(desk: Desk, url: str, query: str | None = None) -> str:
    if query:
        return desk.show(await desk.library.web.search(url, query, limit=3), f"nothing about '{query}' on {url}")
    return desk.show([await desk.library.web.read(url, 1, 200)])


REPO = "owner/name on GitHub"
_Tool = tuple[ToolDefinition, Callable[..., Awaitable[str]]]
_TOOLS: list[_Tool] = [
        (ToolDefinition("list_installed", "Installed packages (name, version).",
                        _schema([], contains="name filter")), list_installed),
        (ToolDefinition("search_installed", "Search an installed package's source (offline).",
                        _schema(["package", "query"], package="package name", query="words or identifiers")),
         search_installed),
        (ToolDefinition("read_installed", "Read a file of an installed package with line numbers.",
                        _schema(["package", "path"], package="package name", path="e.g. httpx/_client.py",
                                start_line="", end_line="")), read_installed),
        (ToolDefinition("github_search_code", "GitHub code search (needs a token).",
                        _schema(["query"], query="code search query", repo=REPO, language="")), github_search_code),
        (ToolDefinition("github_search_repos", "Find repositories on GitHub.", _schema(["query"], query="")),
         github_search_repos),
        (ToolDefinition("github_read", "Read a file from GitHub at a ref (tag, branch or SHA).",
                        _schema(["repo", "path"], repo=REPO, path="", ref="", start_line="", end_line="")),
         github_read),
        (ToolDefinition("github_tree", "List a repository's files.", _schema(["repo"], repo=REPO, ref="", path="")),
         github_tree),
        (ToolDefinition("github_releases", "Release notes, newest first.", _schema(["repo"], repo=REPO)),
         github_releases),
        (ToolDefinition("github_compare", "Commits and changed files between two refs.",
                        _schema(["repo", "base", "head"], repo=REPO, base="", head="")), github_compare),
        (ToolDefinition("github_commits", "Recent commits, optionally for one path.",
                        _schema(["repo"], repo=REPO, path="", ref="")), github_commits),
        (ToolDefinition("clone_search", "Shallow-clone a repository and search it in depth.",
                        _schema(["repo", "query"], repo=REPO, query="", ref="")), clone_search),
        (ToolDefinition("clone_read", "Read a file of a cloned repository.",
                        _schema(["repo", "path"], repo=REPO, path="", ref="", start_line="", end_line="")),
         clone_read),
        (ToolDefinition("fetch_page", "Fetch a docs page or llms.txt as text; `query` picks the relevant part.",
                        _schema(["url"], url="http(s) URL", query="")), fetch_page),
]  # fmt: skip
TOOLS: dict[str, _Tool] = {t.name: (t, f) for t, f in _TOOLS}
DEFINITIONS = [definition for definition, _ in TOOLS.values()]


def coerce(definition: ToolDefinition, arguments: Any) -> dict[str, Any]:
    """The model's arguments checked against the tool's schema: integer-like strings and floats become
    ints, empty values are dropped; a wrong type raises ValueError naming the argument."""
    if not isinstance(arguments, dict):
        raise ValueError(f"arguments must be an object with {', '.join(definition.parameters['properties'])}")
    properties = definition.parameters["properties"]
    out: dict[str, Any] = {}
    for name, value in arguments.items():
        if name not in properties:
            raise ValueError(f"unknown argument '{name}'; {definition.name} takes {', '.join(properties)}")
        if value in (None, ""):
            continue
        if properties[name]["type"] == "integer":
            whole = isinstance(value, float) and value.is_integer()
            if whole or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"argument '{name}' must be an integer, not {value!r}")
        elif not isinstance(value, str):
            raise ValueError(f"argument '{name}' must be a string, not {type(value).__name__}")
        out[name] = value
    missing = [r for r in definition.parameters["required"] if r not in out]
    if missing:
        raise ValueError(f"missing argument {', '.join(missing)} for {definition.name}")
    return out


async def run_tool(desk: Desk, call: ToolCall) -> tuple[str, bool]:
    """(result text, is_error); bad arguments, failures and time-outs are told to the model, never raised."""
    entry = TOOLS.get(call.name)
    if entry is None:
        return f"unknown tool {call.name}; use one of: {', '.join(TOOLS)}", True
    limit = CLONE_TIMEOUT_S if call.name.startswith("clone_") else TOOL_TIMEOUT_S
    try:
        arguments = coerce(entry[0], call.arguments)
        with anyio.fail_after(limit):
            text = await entry[1](desk, **arguments)
    except TimeoutError:
        return f"{call.name} timed out after {limit:.0f} s; try a narrower query or another source", True
    except (CadreError, ValueError) as exc:
        return f"error: {exc}", True
    except Exception as exc:  # a source's bug must not end the research
        log.warning("librarian tool failed", tool=call.name, error=repr(exc))
        return f"error: {call.name} failed ({type(exc).__name__}: {exc}); try another source", True
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + "\n... (cut; read a narrower range)"
    return text, False
