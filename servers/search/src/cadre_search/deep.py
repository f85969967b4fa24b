"""Deep mode: a routed fast model plans sub-queries and calls the engine in parallel, then answers."""

from __future__ import annotations

import json
from typing import Any

import anyio

from cadre_core.errors import AllCandidatesFailedError, CadreError, clip
from cadre_core.models.base import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition
from cadre_core.models.refs import is_host
from cadre_core.toolloop import CallModel, KeptCallingTools, tool_loop
from cadre_search.engine import Engine, SearchResult
from cadre_search.rank import Hit

MAX_TURNS = 4
MIN_PARALLEL = 4
TOOL_RESULT_CHARS = 6000
REPEAT_LIMIT = 2
"""An identical engine call returns what the model already has, so a second one means it is looping."""

SYSTEM = f"""You find the code that answers a question in one repository, fast.
Each turn, call at least {MIN_PARALLEL} tools in parallel: several `search` calls with different phrasings
(identifiers, file names, error text), `find_symbol` for names you suspect, `read_span` to confirm.
Stop as soon as the evidence suffices; you have at most {MAX_TURNS} turns.
Finish with a short answer (2-5 sentences) that cites files as path:line, and no tool calls."""

TOOLS = [
    ToolDefinition(
        "search",
        "Ranked code search; returns path, lines, symbol and snippet per file.",
        {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    ),
    ToolDefinition(
        "find_symbol",
        "Definitions (and some references) of a symbol name.",
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    ),
    ToolDefinition(
        "read_span",
        "Read lines of a file with line numbers.",
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
        "list_dir",
        "Files and folders under a path.",
        {"type": "object", "properties": {"path": {"type": "string"}}, "required": []},
    ),
]


class DeepSearch:
    """One deep search: the loop state, the hits seen, the answer and notes for the caller."""

    def __init__(self, engine: Engine, call_model: CallModel, *, limit: int, scope: str | None, turns: int = MAX_TURNS):
        self.engine, self.call_model, self.limit, self.scope, self.turns = engine, call_model, limit, scope, turns
        self.seen: dict[str, Hit] = {}
        self.calls = self.requests = 0
        self.model = ""
        self.notes: list[str] = []

    async def run(self, query: str, fast: SearchResult) -> tuple[str, list[Hit], dict[str, Any]]:
        """Tool turns (the shared `tool_loop`) until the model answers; a repeated identical call ends them
        and forces the answer. Raises `KeptCallingTools` when the model still calls tools on that turn."""
        for hit in fast.hits:
            self.seen.setdefault(hit.path, hit)
        overview = "\n".join(f"- {h.path}:{h.start_line} {h.symbol or ''} ({h.why})" for h in fast.hits[:8])
        request = ModelRequest([Message.user(f"Question:\n{query}\n\nFirst-pass results:\n{overview or '(none)'}")],
                               system=SYSTEM, tools=TOOLS, max_output_tokens=2048, effort="low")  # fmt: skip
        response, self.notes = await tool_loop(
            self._call_model, request, turns=self.turns - 1, run_tool=self._run_tool, who="the engine calls",
            repeat_limit=REPEAT_LIMIT,
        )  # fmt: skip
        answer = response.text.strip()
        cited = [p for p in self.seen if p in answer]
        ranked = sorted(self.seen.values(), key=lambda h: (h.path not in cited, -h.score))
        return answer, ranked[: self.limit], {"turns": self.requests, "tool_calls": self.calls, "model": self.model}

    async def _call_model(self, request: ModelRequest) -> ModelResponse:
        self.requests += 1
        response = await self.call_model(request)
        self.model = response.model or self.model
        return response

    async def _run_tool(self, call: ToolCall) -> tuple[str, bool]:
        """One engine call in a worker thread: its text, clipped, or a short error the model reads."""
        self.calls += 1
        try:
            text = await anyio.to_thread.run_sync(self._tool, call)
            return text[:TOOL_RESULT_CHARS], False
        except (CadreError, ValueError, TypeError, KeyError, OSError) as exc:  # OSError: a path too long...
            return f"error: {clip(str(exc), 300)}", True

    def _tool(self, call: ToolCall) -> str:
        args = call.arguments
        if call.name == "search":
            result = self.engine.search(str(args["query"]), path=self.scope, limit=8)
            for hit in result.hits:
                if hit.path not in self.seen or hit.score > self.seen[hit.path].score:
                    self.seen[hit.path] = hit
            return json.dumps([h.as_dict() for h in result.hits])
        if call.name == "find_symbol":
            return json.dumps(self.engine.find_symbol(str(args["name"]), limit=10))
        if call.name == "read_span":
            span = self.engine.read_span(str(args["path"]), args.get("start_line") or 1, args.get("end_line"))
            return str(span["text"])
        if call.name == "list_dir":
            return json.dumps(self.engine.list_dir(str(args.get("path") or ".")))
        raise ValueError(f"unknown tool {call.name}; use search, find_symbol, read_span or list_dir")


async def deep_search(
    engine: Engine, query: str, call_model: CallModel, *, limit: int, path: str | None, fast: SearchResult
) -> dict[str, Any]:
    """Deep mode's result: fast-mode's shape plus `answer`; falls back to fast mode, with a note,
    without a model or when the model will not stop calling tools."""
    out = fast.as_dict()
    deep = DeepSearch(engine, call_model, limit=limit, scope=path)
    try:
        answer, hits, info = await deep.run(query, fast)
    except AllCandidatesFailedError as exc:
        return _fast(out, _no_answer_note(exc))
    except KeptCallingTools as exc:
        return _fast(out, f"deep mode stopped: the model kept calling tools when told to answer ({exc}); "
                          "returned fast-mode results")  # fmt: skip
    out.update(hits=[h.as_dict() for h in hits], answer=answer, mode="deep", deep=info)
    if deep.notes:
        out["notes"] = [*out.get("notes", []), *deep.notes]
    return out


def _no_answer_note(exc: AllCandidatesFailedError) -> str:
    """Why deep mode got no answer: the keys to set when no provider has one, else what each provider did."""
    tried = [a for a in exc.attempts if a.outcome != "no_key" and not is_host(a.model)]
    if not tried:
        keys = ", ".join(exc.missing_keys) or "a provider key"
        return f"deep mode needs a model ({keys}); returned fast-mode results"
    causes = "; ".join(f"{a.model} {a.outcome}: {a.error}" if a.error else f"{a.model} {a.outcome}" for a in tried)
    return f"deep mode got no answer from a model ({causes}); returned fast-mode results"


def _fast(out: dict[str, Any], note: str) -> dict[str, Any]:
    out["notes"] = [*out.get("notes", []), note]
    out["mode"] = "fast"
    return out
