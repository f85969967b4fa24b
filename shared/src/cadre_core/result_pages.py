"""Tool results too large for a host, kept for a day and read back page by page as MCP resources.

A result over `[server] max_result_tokens` is answered with its first page inline and one resource link per
further page, `cadre://results/<id>?page=N` (MCP 2025-06-18, "Tool Result > Resource Links": a tool may return
`resource_link` content the client can read with `resources/read`; the links need not appear in
`resources/list`). Every server registers the `cadre://results/{id}{?page}` template (RFC 6570 query
variable, which mcp 2.3.0's `MCPServer.resource` accepts when the handler gives it a default).

Sources: https://modelcontextprotocol.io/specification/2025-06-18/server/tools#resource-links (links) and
#structured-content (a structured result SHOULD also be serialized into a text block: so both copies must be
cut, and the structured one keeps only its small fields). mcp 2.3.0: `mcp_types.ResourceLink` is a
`Resource` with `type="resource_link"`; `MCPServer.read_resource` sends a `ResourceError` message to the
client as a -32603 error. Hosts: Claude Code reads a link's URI with its ReadMcpResourceTool, but users report
hosts that never dereference `resource_link` blocks (anthropics/claude-code#74712, #38460), so page 1 and
its note stay useful alone.

Stored text is the tool's own JSON output, already redacted by the tools that produced it; nothing else
(no arguments, no keys) is written.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from mcp_types import CallToolResult, ResourceLink, TextContent

from cadre_core.errors import CadreError
from cadre_core.models.base import CHARS_PER_TOKEN

KEEP_S = 24 * 3600
"""A stored result can be read for a day after it was made."""
URI_TEMPLATE = "cadre://results/{id}{?page}"
SUMMARY_FIELD_CHARS = 400
"""Structured fields whose JSON is at most this long are kept in the paged result's structured content."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS result_pages (
    id TEXT NOT NULL, page INTEGER NOT NULL, text TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (id, page)
);
CREATE INDEX IF NOT EXISTS result_pages_created ON result_pages (created);
"""


class UnknownResultError(CadreError):
    """A page that was never stored, or has expired."""


def page_uri(result_id: str, page: int) -> str:
    return f"cadre://results/{result_id}?page={page}"


def split_pages(text: str, page_chars: int) -> list[str]:
    """`text` cut into pieces of at most `page_chars` characters, at a line end when one falls in the second
    half of a piece; joined, the pieces are `text` exactly."""
    pages, start = [], 0
    while len(text) - start > page_chars:
        end = start + page_chars
        newline = text.rfind("\n", start + page_chars // 2, end)
        end = newline + 1 if newline >= 0 else end
        pages.append(text[start:end])
        start = end
    pages.append(text[start:])
    return pages


def estimate_tokens(text: str) -> int:
    """The core's local characters-per-token estimate (no tokenizer download)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class ResultStore:
    """Pages of large results in SQLite (WAL, shared by every server process); expired rows are pruned on
    each write."""

    def __init__(self, path: Path | str, *, keep_s: float = KEEP_S):
        from cadre_core.db import connect

        self.keep_s = keep_s
        self._conn = connect(path, schema=_SCHEMA)
        self._lock = threading.Lock()

    def put(self, pages: list[str]) -> str:
        """Store `pages` (numbered from 1) under a new random id; return the id."""
        from cadre_core.db import write_transaction

        result_id = secrets.token_urlsafe(12)
        now = time.time()
        with self._lock, write_transaction(self._conn) as conn:
            conn.execute("DELETE FROM result_pages WHERE created < ?", (now - self.keep_s,))
            conn.executemany(
                "INSERT INTO result_pages (id, page, text, created) VALUES (?, ?, ?, ?)",
                [(result_id, n, text, now) for n, text in enumerate(pages, start=1)],
            )
        return result_id

    def page(self, result_id: str, page: int) -> tuple[str, int]:
        """Page `page` of result `result_id` and the result's page count."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT page, text FROM result_pages WHERE id = ? AND created >= ?",
                (result_id, time.time() - self.keep_s),
            ).fetchall()
        texts = dict(rows)
        if not texts:
            raise UnknownResultError(
                f"no stored result {result_id!r}: results are kept for {self.keep_s / 3600:g} hours. "
                "Call the tool again for a fresh result."
            )
        if page not in texts:
            raise UnknownResultError(f"result {result_id!r} has pages 1 to {len(texts)}; ask for one of those.")
        return texts[page], len(texts)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def default_results_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("cadre")) / "results.sqlite"


def small_fields(structured: Any, budget_chars: int) -> dict[str, Any]:
    """The top-level fields of `structured` whose JSON is short, while they fit in `budget_chars`."""
    kept: dict[str, Any] = {}
    if not isinstance(structured, dict):
        return kept
    used = 0
    for key, value in structured.items():
        size = len(json.dumps(value, default=str))
        if size <= SUMMARY_FIELD_CHARS and used + size <= budget_chars:
            kept[key] = value
            used += size
    return kept


def paged(
    result: CallToolResult, store: ResultStore, limit_tokens: int, *, reader: str | None = None
) -> CallToolResult:
    """`result` itself when it fits in `limit_tokens` (or is an error, or has non-text content); else its
    first page inline with a note naming the rest, one resource link per further page, and the small
    structured fields plus `paged: {id, pages, next}`. The pages joined are the original text exactly.
    `reader` names the server's tool that reads a page (`read_result`), for hosts that cannot read links."""
    if result.is_error or not result.content or not all(isinstance(b, TextContent) for b in result.content):
        return result
    text = "\n".join(b.text for b in result.content)  # type: ignore[union-attr]  # all TextContent, checked above
    structured_chars = len(json.dumps(result.structured_content, default=str)) if result.structured_content else 0
    if estimate_tokens(text) <= limit_tokens and structured_chars / CHARS_PER_TOKEN <= limit_tokens:
        return result
    limit_chars = int(limit_tokens * CHARS_PER_TOKEN)
    pages = split_pages(text, limit_chars * 3 // 4)  # a page, the note and the kept fields fit in the limit
    if len(pages) == 1:  # only the structured copy was too large: the text alone is the answer
        return CallToolResult(content=result.content, structured_content=_summary(result, "", 1, limit_chars))
    result_id = store.put(pages)
    rest = len(pages) - 1
    note = (
        f"\n\n[Cadre: this result is {len(text):,} characters, over the {limit_tokens:,}-token limit; this was page "
        f"1 of {len(pages)}. {rest} more page{'s' if rest > 1 else ''}: read {page_uri(result_id, 2)}"
        + (f" ... {page_uri(result_id, len(pages))}" if rest > 1 else "")
        + " with resources/read"
        + (f" (or call {reader} with id {result_id!r} and page 2 to {len(pages)})" if reader else "")
        + "; the pages joined are the full JSON. Kept for a day.]"
    )
    links = [
        ResourceLink(
            uri=page_uri(result_id, n),
            name=f"result-{result_id}-page-{n}",
            mime_type="text/plain",
            description=f"Page {n} of {len(pages)} of this tool result",
        )
        for n in range(2, len(pages) + 1)
    ]
    paged = CallToolResult(
        content=[TextContent(text=pages[0] + note), *links],
        structured_content=_summary(result, result_id, len(pages), limit_chars),
    )
    paged.meta = result.meta  # the field's alias is `_meta`, so it is set after construction
    return paged


def _summary(result: CallToolResult, result_id: str, pages: int, limit_chars: int) -> dict[str, Any]:
    kept = small_fields(result.structured_content, limit_chars // 8)
    if pages > 1:
        kept["paged"] = {"id": result_id, "pages": pages, "next": page_uri(result_id, 2)}
    else:
        kept["paged"] = {"pages": 1, "note": "the full result is in the text content"}
    return kept
