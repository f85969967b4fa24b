"""Deep mode with no provider key: the host's model answers from the fast-mode hits, in one turn.

The host's model cannot call the engine (MCP sampling here has no tools), so it gets the first-pass
hits with their snippets instead of exploring. The request is built the same way in the tool's
`Sample` resolver (MCP 2026-07-28) and in the tool body, so the host is asked what the tool checks.
"""

from __future__ import annotations

from typing import Any

from cadre_core.errors import AllCandidatesFailedError
from cadre_core.models.base import Message, ModelRequest
from cadre_search.engine import SearchResult

HOST_HITS = 8
SYSTEM = """You find the code that answers a question in one repository.
You are given the ranked results of a code search (path, lines, symbol, snippet).
Answer in 2-5 sentences that cite files as path:line, using only these results.
If they do not answer the question, say which file to read next."""


def host_request(query: str, fast: SearchResult) -> ModelRequest:
    """The one request the host's model answers: the question and the top fast-mode hits."""
    shown = [f"## {h.path}:{h.start_line}-{h.end_line} {h.symbol or ''}\n{h.snippet}" for h in fast.hits[:HOST_HITS]]
    results = "\n\n".join(shown) or "(no results)"
    return ModelRequest(
        [Message.user(f"Question:\n{query}\n\nSearch results:\n{results}")],
        system=SYSTEM,
        max_output_tokens=1024,
    )


async def host_answer(call_model: Any, query: str, fast: SearchResult, host_sample: Any) -> dict[str, Any]:
    """Deep mode's result answered by the host's model; fast mode with a note when it cannot answer."""
    out = fast.as_dict()
    try:
        response = await call_model(host_request(query, fast), host_sample)
    except AllCandidatesFailedError as exc:
        out["notes"] = [*out.get("notes", []), f"{exc}; returned fast-mode results"]
        out["mode"] = "fast"
        return out
    note = "answered by your host's model from these hits; with a provider key, deep mode explores the code"
    out.update(answer=response.text.strip(), mode="deep", deep={"turns": 1, "tool_calls": 0, "model": "host"})
    out["notes"] = [*out.get("notes", []), note]
    return out
