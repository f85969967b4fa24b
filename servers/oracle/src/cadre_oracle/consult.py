"""`consult_oracle` as a plain async function: pack files, run the read-only tool loop, answer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from cadre_core.kit import Kit
from cadre_core.models.base import Message, ModelRequest, ModelResponse, ToolCall, Usage
from cadre_core.workspace import Workspace
from cadre_oracle.answers import OracleAnswer, strict_schema, validator
from cadre_oracle.context import pack, project_instructions, resolve_files
from cadre_oracle.prompts import system_prompt
from cadre_oracle.readonly import TOOLS, run_tool

FILE_BUDGET_TOKENS = 120_000
MAX_FILE_BUDGET_TOKENS = 300_000
"""Even a 1M-token window gets at most this much file text: cost stays predictable."""
HISTORY_BUDGET_TOKENS = 60_000
KEEP_RECENT_MESSAGES = 4
DEFAULT_TOOL_TURNS = 4
ANSWER_SCHEMA = strict_schema(OracleAnswer)
SUMMARY_PROMPT = (
    "Summarize this conversation so it can be continued; keep decisions, facts and open questions, at most 400 words."
)


@dataclass
class Spend:
    """Cost and tokens summed over every model call of one tool call."""

    cost_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    unpriced: bool = False

    def add(self, response: ModelResponse) -> None:
        self.usage = self.usage + response.usage
        if response.cost_usd is None:
            self.unpriced = True
        else:
            self.cost_usd += response.cost_usd

    def tokens(self) -> dict[str, int]:
        u = self.usage
        return {"input": u.input_tokens, "output": u.output_tokens, "reasoning": u.reasoning_tokens,
                "cache_read": u.cache_read_tokens}  # fmt: skip


def shown_model(model: str) -> str:
    """`host` for the MCP host's model, else `provider:model`."""
    return "host" if model.startswith("sampling:") else model


def keyed_route(kit: Kit, role: str) -> bool:
    """True when some candidate of the role has a key (so tools can be used)."""
    return any(why is None and not c.model.startswith("sampling:") for c, why in kit.router.availability(role))


def file_budget(kit: Kit | None, role: str = "oracle") -> int:
    """Tokens of files to send: half the smallest window among the role's usable candidates, capped."""
    if kit is None:
        return FILE_BUDGET_TOKENS
    config = kit.config.config
    windows = [
        window
        for candidate, why in kit.router.availability(role)
        if why is None and (window := config.context_window(candidate))
    ]
    return min(MAX_FILE_BUDGET_TOKENS, min(windows) // 2) if windows else FILE_BUDGET_TOKENS


def first_request(
    ws: Workspace,
    *,
    question: str,
    files: list[str] | None,
    context: str | None,
    mode: str,
    effort: str | None,
    budget_tokens: int = FILE_BUDGET_TOKENS,
) -> tuple[ModelRequest, list[str]]:
    """The opening request (system prompt, question, packed files) and notes for the caller."""
    paths, notes = resolve_files(ws, files or [])
    packed = pack(paths, ws, budget_tokens=budget_tokens)
    notes += [f"{path} left out: {reason}" for path, reason in packed.omitted]
    parts = [f"Question:\n{question}"]
    if context:
        parts.append(f"Context from the agent:\n{context}")
    if packed.text:
        parts.append(f"Files (line-numbered):\n{packed.text}")
    if notes:
        parts.append("Notes:\n" + "\n".join(f"- {n}" for n in notes))
    request = ModelRequest(
        [Message.user("\n\n".join(parts))],
        system=system_prompt(mode, project_instructions(ws)),
        output_schema=ANSWER_SCHEMA,
        schema_name="oracle_answer",
        effort=effort,  # type: ignore[arg-type]
        validate=validator(OracleAnswer),
    )
    return request, notes


async def consult(
    kit: Kit,
    ctx: Any,
    ws: Workspace,
    *,
    question: str,
    files: list[str] | None = None,
    context: str | None = None,
    mode: str = "ask",
    effort: str | None = None,
    thread_id: str | None = None,
    host_sample: Any = None,
    tool_turns: int = DEFAULT_TOOL_TURNS,
) -> dict[str, Any]:
    """Ask the oracle role; returns the structured answer with model, cost, tokens and thread."""
    if not question or not question.strip():
        from cadre_core.errors import CadreError

        raise CadreError("the question is empty; say what you want the oracle to answer")
    thread_id, history = kit.open_thread(thread_id, "consult_oracle")
    request, notes = first_request(
        ws, question=question, files=files, context=context, mode=mode, effort=effort, budget_tokens=file_budget(kit)
    )
    spend = Spend()
    history = await compact_history(kit, ctx, history, thread_id, spend)
    messages = [*history, *request.messages]
    turns = tool_turns if keyed_route(kit, "oracle") else 0
    for turn in range(turns + 1):
        final = turn == turns
        step = replace(request, messages=messages, tools=[] if final else TOOLS)
        response = await kit.call_model(ctx, step, tool="consult_oracle", thread_id=thread_id, host_sample=host_sample)
        host_sample = None
        spend.add(response)
        if not response.tool_calls:
            break
        messages = [*messages, response.to_message(), *await run_tools(ws, response.tool_calls)]
    answer = OracleAnswer.model_validate(response.output)
    citations, dropped = check_citations(ws, answer)
    notes += dropped
    kit.save_turn(
        thread_id,
        [Message.user(_turn_summary(question, context, files)), Message.assistant(answer.answer)],
        model=response.model,
    )
    return {
        **answer.model_dump(),
        "citations": citations,
        "model": shown_model(response.model),
        "cost_usd": None if spend.unpriced and not spend.cost_usd else round(spend.cost_usd, 6),
        "tokens": spend.tokens(),
        "thread_id": thread_id,
        **({"notes": notes} if notes else {}),
    }


async def run_tools(ws: Workspace, calls: list[ToolCall]) -> list[Message]:
    """Run the model's read-only tool calls in parallel; results in call order."""
    results: list[Message | None] = [None] * len(calls)

    async def one(index: int, call: ToolCall) -> None:
        text, is_error = await run_tool(ws, call)
        results[index] = Message.tool_result(call, text, is_error=is_error)

    async with anyio.create_task_group() as tg:
        for index, call in enumerate(calls):
            tg.start_soon(one, index, call)
    return [m for m in results if m is not None]


def check_citations(ws: Workspace, answer: OracleAnswer) -> tuple[list[dict], list[str]]:
    """Citations whose file exists in the workspace and whose lines are in range; notes for the rest."""
    kept, notes = [], []
    for cite in answer.citations:
        try:
            real = ws.resolve(cite.path)
            lines = real.read_text("utf-8", errors="replace").count("\n") + 1 if real.is_file() else 0
        except Exception:
            lines = 0
        if lines and cite.start_line <= cite.end_line <= lines:
            kept.append({"path": ws.relative(real), "start_line": cite.start_line, "end_line": cite.end_line})
        else:
            notes.append(f"dropped citation {cite.path}:{cite.start_line}-{cite.end_line} (no such lines)")
    return kept, notes


async def compact_history(kit: Kit, ctx: Any, history: list[Message], thread_id: str, spend: Spend) -> list[Message]:
    """The thread's history, with older turns replaced by a summary when it is too long to resend."""
    size = sum(len(m.text) for m in history) / 3.5
    if size <= HISTORY_BUDGET_TOKENS or len(history) <= KEEP_RECENT_MESSAGES:
        return history
    keep, chars = len(history), 0
    while keep > 0 and len(history) - keep < KEEP_RECENT_MESSAGES and chars + len(history[keep - 1].text) <= 35_000:
        keep -= 1
        chars += len(history[keep].text)
    while keep < len(history) and history[keep].role != "user":  # the kept part starts with a question
        keep += 1
    older, recent = history[:keep], history[keep:]
    transcript = "\n\n".join(f"{m.role.upper()}: {m.text}" for m in older)[-400_000:]
    request = ModelRequest(
        [Message.user(f"{SUMMARY_PROMPT}\n\n{transcript}")],
        max_output_tokens=2000,
        effort="low",
    )
    response = await kit.call_model(ctx, request, tool="consult_oracle", thread_id=thread_id)
    spend.add(response)
    summary = Message.user(f"Summary of the earlier conversation:\n{response.text.strip()}")
    return [summary, Message.assistant("Understood."), *recent]


def _turn_summary(question: str, context: str | None, files: list[str] | None) -> str:
    parts = [question]
    if context:
        parts.append(f"Context: {context}")
    if files:
        parts.append(f"Files: {', '.join(files)}")
    return "\n\n".join(parts)
