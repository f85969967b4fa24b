"""`consult_oracle` as a plain async function: pack files, run the read-only tool loop, answer."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio

from cadre_core.errors import CadreError
from cadre_core.kit import Kit
from cadre_core.models.base import Effort, Message, ModelRequest
from cadre_core.results import shown_model
from cadre_core.toolloop import kit_caller, tool_loop
from cadre_core.workspace import Workspace
from cadre_oracle.answers import OracleAnswer, oracle_validator, strict_schema
from cadre_oracle.context import pack, project_instructions, resolve_files
from cadre_oracle.prompts import system_prompt
from cadre_oracle.readonly import TOOLS, run_tool

if TYPE_CHECKING:
    import mcp_types
    from mcp.server.mcpserver import Context

    from cadre_core.call import CallInfo

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
    effort: Effort | None,
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
        effort=effort,
        validate=oracle_validator(),
    )
    return request, notes


async def consult(
    kit: Kit,
    ctx: Context | None,
    ws: Workspace,
    *,
    question: str,
    files: list[str] | None = None,
    context: str | None = None,
    mode: str = "ask",
    effort: Effort | None = None,
    thread_id: str | None = None,
    host_sample: mcp_types.CreateMessageResult | None = None,
    tool_turns: int | None = None,
) -> dict[str, Any]:
    """Ask the oracle role; returns the structured answer with model and thread (`tool_errors` adds its cost)."""
    if not question or not question.strip():
        raise CadreError("the question is empty; say what you want the oracle to answer")
    thread_id, history = kit.open_thread(thread_id, "consult_oracle")
    call = kit.new_call("consult_oracle", thread_id)
    call.phase = "reading files"
    budget = file_budget(kit)
    request, notes = await anyio.to_thread.run_sync(
        lambda: first_request(
            ws, question=question, files=files, context=context, mode=mode, effort=effort, budget_tokens=budget
        )
    )
    history = await compact_history(kit, ctx, history, call)
    messages = [*history, *request.messages]
    if tool_turns is None:
        role = kit.config.config.roles.get("oracle")
        tool_turns = role.max_tool_turns if role else DEFAULT_TOOL_TURNS
    turns = tool_turns if kit.keyed("oracle") else 0

    def gave_up(turns: int, looping: str | None) -> str:
        if looping:
            return f"the oracle kept repeating a tool call ({looping}); pass the files it needs directly"
        return (f"the oracle kept reading files after {turns} tool turns without answering; "
                "pass the relevant files or a narrower question")  # fmt: skip

    response, loop_notes = await tool_loop(
        kit_caller(kit, ctx, tool="consult_oracle", call=call, host_sample=host_sample),
        replace(request, messages=messages, tools=TOOLS), call=call, turns=turns,
        run_tool=lambda tool_call: run_tool(ws, tool_call), who="the oracle's file reading", gave_up=gave_up,
    )  # fmt: skip
    notes += loop_notes
    answer = OracleAnswer.model_validate(response.output)
    citations, dropped = check_citations(ws, answer)
    notes += dropped + response.warnings
    kit.save_turn(
        thread_id,
        [Message.user(_turn_summary(question, context, files)), Message.assistant(answer.answer)],
        model=response.model,
    )
    return {
        **answer.model_dump(),
        "citations": citations,
        "model": shown_model(response.model),
        "thread_id": thread_id,
        **({"notes": notes} if notes else {}),
    }


def check_citations(ws: Workspace, answer: OracleAnswer) -> tuple[list[dict[str, Any]], list[str]]:
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


async def compact_history(kit: Kit, ctx: Context | None, history: list[Message], call: CallInfo) -> list[Message]:
    """The thread's history, with older turns replaced by a summary when it is too long to resend."""
    size = sum(len(m.text) for m in history) / 3.5
    budget = min(HISTORY_BUDGET_TOKENS, file_budget(kit) // 2)  # leave the window room for the new question
    if size <= budget or len(history) <= KEEP_RECENT_MESSAGES:
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
    call.phase = "summarising the thread"
    response = await kit.call_model(ctx, request, tool="consult_oracle", call=call)
    summary = Message.user(f"Summary of the earlier conversation:\n{response.text.strip()}")
    return [summary, Message.assistant("Understood."), *recent]


def _turn_summary(question: str, context: str | None, files: list[str] | None) -> str:
    parts = [question]
    if context:
        parts.append(f"Context: {context}")
    if files:
        parts.append(f"Files: {', '.join(files)}")
    return "\n\n".join(parts)
