"""A bounded tool loop: the model reads with tools for a few turns, then must answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio

from cadre_core.detectors import tool_call_loop
from cadre_core.errors import CadreError
from cadre_core.models.base import Message, ModelRequest, ModelResponse, ToolCall


async def tool_loop(
    kit: Any,
    ctx: Any,
    request: ModelRequest,
    *,
    tool: str,
    call: Any,
    turns: int,
    run_tool: Callable[[ToolCall], Awaitable[tuple[str, bool]]],
    who: str,
    gave_up: Callable[[int, str | None], str],
    host_sample: Any = None,
) -> tuple[ModelResponse, list[str]]:
    """The final answer and notes. `request.tools` are offered for `turns` turns, each turn's calls run in
    parallel through `run_tool` (text, is_error); a repeated identical
    call (tool_call_loop) ends the reading early. The last turn keeps the tools declared once any were
    used (some vendors require it) but must answer; a model that still calls tools raises
    `CadreError(gave_up(turns, looping))`."""
    notes: list[str] = []
    messages = list(request.messages)
    calls_so_far: list[ToolCall] = []
    for turn in range(turns + 1):
        looping = tool_call_loop(calls_so_far)
        final = turn == turns or looping is not None
        if looping:
            notes.append(f"stopped {who} reading early: {looping}")
        step = replace(request, messages=messages, tools=request.tools if calls_so_far or not final else [],
                       tools_allowed=not final)  # fmt: skip
        response = await kit.call_model(ctx, step, tool=tool, host_sample=host_sample, call=call)
        host_sample = None
        if not response.tool_calls:
            return response, notes
        if final:
            raise CadreError(gave_up(turns, looping))
        calls_so_far += response.tool_calls
        call.phase = f"running {len(response.tool_calls)} tool call(s)"
        messages = [*messages, response.to_message(), *await run_in_parallel(response.tool_calls, run_tool)]
    raise AssertionError("unreachable")  # pragma: no cover


async def run_in_parallel(
    calls: list[ToolCall], run_tool: Callable[[ToolCall], Awaitable[tuple[str, bool]]]
) -> list[Message]:
    """One turn's tool calls run in parallel; their results in call order."""
    results: list[Message | None] = [None] * len(calls)

    async def one(index: int, call: ToolCall) -> None:
        text, is_error = await run_tool(call)
        results[index] = Message.tool_result(call, text, is_error=is_error)

    async with anyio.create_task_group() as tg:
        for index, call in enumerate(calls):
            tg.start_soon(one, index, call)
    return [m for m in results if m is not None]
