"""The offline engine behind the tools and `cadre search`: plain functions, no MCP."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cadre_core.errors import CadreError, WorkspaceError, clip
from cadre_core.files import is_secret_path, read_lines
from cadre_core.workspace import Workspace
from cadre_search.build import Builder, early_files
from cadre_search.index import Index, RefreshStats
from cadre_search.query import MAX_QUERY_CHARS, QueryPlan, plan
from cadre_search.rank import Hit, search
from cadre_search.tokens import fts_quote

MAX_LIMIT = 50
MAX_SPAN_LINES = 400
MAX_SYMBOL_CHARS = 200


class QueryError(CadreError):
    """The query cannot be searched as given."""


@dataclass
class SearchResult:
    hits: list[Hit]
    index: dict[str, Any]
    took_ms: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = {"hits": [h.as_dict() for h in self.hits], "index": self.index, "took_ms": round(self.took_ms, 1)}
        if self.notes:
            out["notes"] = self.notes
        return out


class Engine:
    """Search one workspace root; the index refreshes itself before each query."""

    def __init__(self, root: Path, *, index_path: Path | None = None, answer_while_building: bool = False):
        self.workspace = Workspace([root])
        self.root = self.workspace.primary
        self._index_path = index_path
        self._index: Index | None = None
        self._lock = threading.Lock()
        self.answer_while_building = answer_while_building
        """Build a large first index in the background and answer from the files a query hits meanwhile
        (for a long-lived server; a one-shot command waits for the whole index)."""
        self._builder: Builder | None = None

    @property
    def index(self) -> Index:
        with self._lock:
            if self._index is None:
                self._index = Index(self.root, self._index_path)
            return self._index

    def refresh(self, progress: Callable[[int, int], None] | None = None) -> RefreshStats:
        """Update the index; a corrupt index is rebuilt from scratch."""
        try:
            return self.index.refresh(progress)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            self.index.rebuild()
            return self.index.refresh(progress)

    def search(
        self,
        query: str,
        *,
        path: str | None = None,
        limit: int = 10,
        progress: Callable[[int, int], None] | None = None,
    ) -> SearchResult:
        """Ranked hits for `query`, one per file, limited to `path` when given."""
        started = time.perf_counter()
        if not isinstance(query, str) or not query.strip():
            raise QueryError("the query is empty; pass words, identifiers or a pasted error message")
        notes = []
        if len(query) > MAX_QUERY_CHARS:
            notes.append(f"query truncated to its first {MAX_QUERY_CHARS:,} characters")
        limit = max(1, min(int(limit), MAX_LIMIT))
        scope = self._scope(path)
        query_plan = plan(query)
        if query_plan.empty:
            raise QueryError("the query has no searchable words; include identifiers, file names or error text")
        early = self._early(query_plan, limit, scope, progress) if self.answer_while_building else None
        if early is not None:
            hits, info, note = early
            return SearchResult(hits, info, (time.perf_counter() - started) * 1000, [*notes, note])
        stats = self._refresh_for_query(progress, notes)
        hits = self._ranked(query_plan, limit, scope)
        return SearchResult(hits, self._index_info(stats), (time.perf_counter() - started) * 1000, notes)

    def _early(
        self, query_plan: QueryPlan, limit: int, scope: str, progress: Callable[[int, int], None] | None
    ) -> tuple[list[Hit], dict[str, Any], str] | None:
        """While the first build runs: hits from the files this query can hit, indexed first."""
        index = self.index
        with self._lock:
            if self._builder is None or not self._builder.running:
                if index.complete():
                    return None
                self._builder = self._builder or Builder(index)
            builder = self._builder
        queue = early_files(builder, query_plan, scope, progress)
        if queue is None or builder.error is not None:  # the foreground refresh reports or repairs it
            return None
        reader = index.reader()
        hits = search(reader, query_plan, limit=limit, scope=scope)
        done, total = queue.stored_count, len(queue)
        info = {"files": reader.file_count(), "refreshed": done, "removed": 0, "building": True}
        note = (
            f"the index is still building ({done:,} of {total:,} files); this answer ranks the files that "
            "mention the query first, and later queries use the whole index"
        )
        return hits, info, note

    def _ranked(self, query_plan: QueryPlan, limit: int, scope: str) -> list[Hit]:
        try:
            return search(self.index, query_plan, limit=limit, scope=scope)
        except sqlite3.DatabaseError:
            self.index.rebuild()
            self.index.refresh()
            return search(self.index, query_plan, limit=limit, scope=scope)

    def _refresh_for_query(self, progress: Callable[[int, int], None] | None, notes: list[str]) -> RefreshStats | None:
        try:
            stats = self.refresh(progress)
        except sqlite3.OperationalError as exc:
            notes.append(f"index not refreshed ({exc}); results may be stale")
            return None
        if stats.stale:
            notes.append("another process is updating the index; results may be stale")
        return stats

    def _index_info(self, stats: RefreshStats | None) -> dict[str, Any]:
        files = stats.files if stats else self.index.file_count()
        return {"files": files, "refreshed": stats.refreshed if stats else 0, "removed": stats.removed if stats else 0}

    def _scope(self, path: str | None) -> str:
        if not path or path in (".", "./"):
            return ""
        resolved = self.workspace.resolve(path)
        if not resolved.exists():
            raise WorkspaceError(f"'{clip(path)}' does not exist under {self.root}; pass an existing file or folder")
        rel = self.workspace.relative(resolved)
        return "" if rel == "." else rel

    def find_symbol(self, name: str, kind: str | None = None, *, limit: int = 20) -> dict[str, Any]:
        """Definitions named `name` (exact, then prefix), and their references (calls, imports, type uses)."""
        name = (name or "").strip()
        short = name.rsplit(".", 1)[-1].rsplit("::", 1)[-1]
        if not short or "\x00" in name:
            raise QueryError("pass a symbol name, e.g. 'Router' or 'parse_model_ref'")
        if len(name) > MAX_SYMBOL_CHARS:
            raise QueryError(f"the symbol name is {len(name):,} characters long; pass at most {MAX_SYMBOL_CHARS}")
        self._refresh_for_query(None, [])
        where, args = "lname = ?", [short.lower()]
        if kind:
            where += " AND kind = ?"
            args.append(kind.lower())
        sql = f"SELECT name, kind, path, start_line, end_line, container FROM symbols WHERE {where} "  # noqa: S608
        # an exact-case match (class `Router`) before a case-insensitive one (method `router`)
        order = "ORDER BY name = ? DESC, path, start_line LIMIT ?"
        rows = self.index.query(sql + order, [*args, short, limit])
        if not rows:
            like = short.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self.index.query(
                sql.replace("lname = ?", "lname LIKE ? ESCAPE '\\'")
                + "ORDER BY substr(name, 1, ?) = ? DESC, length(name), path LIMIT ?",
                [like, *args[1:], len(short), short, limit],
            )
        definitions = [
            {"name": r[0], "kind": r[1], "path": r[2], "start_line": r[3], "end_line": r[4], "container": r[5] or None}
            for r in rows
        ]
        if "." in name:
            wanted = name.rsplit(".", 1)[0].lower()
            definitions.sort(key=lambda d: (d["container"] or "").lower().endswith(wanted), reverse=True)
        return {"definitions": definitions, "references": self._references(short, definitions, limit)}

    def _references(self, name: str, definitions: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
        """Calls, imports and type uses of `name` (exact case when a definition has it, else the names
        found), nearest to those definitions first."""
        from cadre_search.refs import references

        rows = self.index.query(
            "SELECT DISTINCT c.path FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ? LIMIT 400",
            [f"body:{fts_quote(name.lower())}"],
        )
        exact = [d for d in definitions if d["name"] == name]  # `Router`, not also the method `router`
        names = {name} if exact or not definitions else {d["name"] for d in definitions}
        return references(str(self.root), names, [r[0] for r in rows], exact or definitions, limit=limit)

    def read_span(self, path: str, start_line: int = 1, end_line: int | None = None) -> dict[str, Any]:
        """Redacted lines of a workspace file with line numbers (at most 400), through the reading gate."""
        resolved = self.workspace.resolve(path)
        if not resolved.is_file():
            raise WorkspaceError(f"'{path}' is not a file under {self.root}")
        rel = self.workspace.relative(resolved)
        if is_secret_path(rel):
            raise WorkspaceError(f"'{path}' looks like a secret file and is not readable here")
        start = max(1, int(start_line or 1))
        try:
            lines, start, total = read_lines(resolved, start, int(end_line or start + 199), max_lines=MAX_SPAN_LINES)
        except OSError as exc:
            raise WorkspaceError(f"cannot read '{path}': {exc.strerror}") from exc
        if not lines and total:
            raise WorkspaceError(f"'{path}' has {total} lines; pass a start_line of at most {total}")
        numbered = "\n".join(f"{n:>5}  {line}" for n, line in enumerate(lines, start))
        return {"path": rel, "start_line": start, "end_line": start + len(lines) - 1, "text": numbered}

    def list_dir(self, path: str = ".") -> dict[str, Any]:
        """Indexed files and folders directly under `path`."""
        scope = self._scope(path)
        prefix = f"{scope}/" if scope else ""
        rows = self.index.query(
            "SELECT path FROM files WHERE path LIKE ? ESCAPE '\\' ORDER BY path",
            [prefix.replace("%", "\\%").replace("_", "\\_") + "%"],
        )
        entries: dict[str, None] = {}
        for (file_path,) in rows:
            rest = file_path[len(prefix) :]
            entries[rest.split("/", 1)[0] + ("/" if "/" in rest else "")] = None
        return {"path": scope or ".", "entries": list(entries)}


_engines: dict[tuple[Path, Path | None], Engine] = {}
_engines_lock = threading.Lock()


def engine_for(root: Path, index_path: Path | None = None, *, answer_while_building: bool = False) -> Engine:
    """One engine per root per process, so the index connection is reused."""
    key = (Path(root).resolve(), index_path)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(key[0], index_path=index_path)
        if answer_while_building:
            _engines[key].answer_while_building = True
        return _engines[key]
