"""Deep mode: a routed fast model plans sub-queries and calls the engine in parallel, then answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import anyio

from cadre_core.detectors import runaway_turns, tool_call_loop
from cadre_core.errors import AllCandidatesFailedError, CadreError, clip
from cadre_core.models.base import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition
from cadre_core.models.refs import is_host
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

CallModel = Callable[[ModelRequest], Awaitable[ModelResponse]]


class Stopped(CadreError):
    """The model would not stop calling tools after it was told to answer."""

    def __init__(self, detector: str, reason: str):
        super().__init__(f"{detector}: {reason}")
        self.detector, self.reason = detector, reason


class DeepSearch:
    """One deep search: the loop state, the hits seen, the answer and notes for the caller."""

    def __init__(self, engine: Engine, call_model: CallModel, *, limit: int, scope: str | None, turns: int = MAX_TURNS):
        self.engine, self.call_model, self.limit, self.scope, self.turns = engine, call_model, limit, scope, turns
        self.seen: dict[str, Hit] = {}
        self.calls = 0
        self.model = ""
        self.notes: list[str] = []

    async def run(self, query: str, fast: SearchResult) -> tuple[str, list[Hit], dict]:
        """Tool turns until the model answers; a repeated identical call ends them and forces the answer.

        Raises `Stopped` when the model still calls tools on the turn where it must answer.
        """
        for hit in fast.hits:
            self.seen.setdefault(hit.path, hit)
        overview = "\n".join(f"- {h.path}:{h.start_line} {h.symbol or ''} ({h.why})" for h in fast.hits[:8])
        messages = [Message.user(f"Question:\n{query}\n\nFirst-pass results:\n{overview or '(none)'}")]
        answer = ""
        history: list[ToolCall] = []
        looping: str | None = None
        for turn in range(1, self.turns + 1):
            final = turn == self.turns or looping is not None
            request = ModelRequest(
                messages,
                system=SYSTEM,
                tools=TOOLS if (not final or history) else [],  # declared once used: providers need them
                tools_allowed=not final,  # the last turn must answer
                max_output_tokens=2048,
                effort="low",
            )
            response = await self.call_model(request)
            self.model = response.model or self.model
            messages.append(response.to_message())
            if not response.tool_calls:
                answer = response.text.strip()
                break
            if looping is not None:
                raise Stopped("tool_call_loop", looping)
            if final:
                raise Stopped("runaway_turns", runaway_turns(turn + 1, limit=self.turns) or "")
            looping = tool_call_loop([*history, *response.tool_calls], limit=REPEAT_LIMIT)
            results = await self._run_tools(
                response.tool_calls, skip=_repeats(history, response.tool_calls) if looping else set()
            )
            history += response.tool_calls
            messages += [Message.tool_result(call, text, is_error=err) for call, text, err in results]
            if looping is not None:
                self.notes.append(f"stopped the engine calls early (tool_call_loop): {looping}")
        cited = [p for p in self.seen if p in answer]
        ranked = sorted(self.seen.values(), key=lambda h: (h.path not in cited, -h.score))
        return answer, ranked[: self.limit], {"turns": turn, "tool_calls": self.calls, "model": self.model}

    async def _run_tools(self, calls: list[ToolCall], skip: Collection[int] = ()) -> list[tuple[ToolCall, str, bool]]:
        """Run the calls in parallel, results in call order; the ones at `skip` are answered "not run"."""
        results: list[tuple[ToolCall, str, bool] | None] = [None] * len(calls)

        async def one(i: int, call: ToolCall) -> None:
            if i in skip:
                results[i] = (call, "not run: you already made this exact call; answer now from what you have", True)
                return
            try:
                text = await anyio.to_thread.run_sync(self._tool, call)
                results[i] = (call, text[:TOOL_RESULT_CHARS], False)
            except (CadreError, ValueError, TypeError, KeyError, OSError) as exc:  # OSError: a path too long...
                results[i] = (call, f"error: {clip(str(exc), 300)}", True)

        async with anyio.create_task_group() as tg:
            for i, call in enumerate(calls):
                tg.start_soon(one, i, call)
        self.calls += len(calls) - len(skip)
        return [r for r in results if r is not None]

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
            return span["text"]
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
    except Stopped as exc:
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


def _repeats(history: list[ToolCall], calls: list[ToolCall]) -> set[int]:
    """Indexes of `calls` identical (name and arguments) to an earlier call."""
    seen = {_key(c) for c in history}
    repeated = set()
    for i, call in enumerate(calls):
        if _key(call) in seen:
            repeated.add(i)
        seen.add(_key(call))
    return repeated


def _key(call: ToolCall) -> tuple[str, str]:
    return call.name, json.dumps(call.arguments, sort_keys=True)
