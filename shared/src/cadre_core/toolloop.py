"""The one bounded tool loop: the model reads with tools for a few turns, then must answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio

from cadre_core.detectors import repeated_calls, runaway_turns, tool_call_loop
from cadre_core.errors import CadreError
from cadre_core.models.base import Message, ModelRequest, ModelResponse, ToolCall

if TYPE_CHECKING:
    import mcp_types
    from mcp.server.mcpserver import Context

    from cadre_core.call import CallInfo
    from cadre_core.kit import Kit

CallModel = Callable[[ModelRequest], Awaitable[ModelResponse]]
RunTool = Callable[[ToolCall], Awaitable[tuple[str, bool]]]
NOT_RUN = "not run: you already made this exact call; answer now from what you have"


class KeptCallingTools(CadreError):
    """The model still called tools on the turn where it had to answer; `detector` and `reason` say why
    that turn had to answer (`tool_call_loop`: a repeated call, `runaway_turns`: the turns ran out)."""

    def __init__(self, message: str, *, detector: str, reason: str):
        super().__init__(message)
        self.detector, self.reason = detector, reason


def kit_caller(
    kit: Kit,
    ctx: Context | None,
    *,
    tool: str,
    call: CallInfo,
    host_sample: mcp_types.CreateMessageResult | None = None,
) -> CallModel:
    """`kit.call_model` for one tool call; a host sample resolved before the call answers the first request."""
    pending = [host_sample]

    async def call_model(request: ModelRequest) -> ModelResponse:
        sample, pending[0] = pending[0], None
        return await kit.call_model(ctx, request, tool=tool, host_sample=sample, call=call)

    return call_model


async def tool_loop(
    call_model: CallModel,
    request: ModelRequest,
    *,
    turns: int,
    run_tool: RunTool,
    who: str,
    call: CallInfo | None = None,
    repeat_limit: int = 3,
    gave_up: Callable[[int, str | None], str] | None = None,
) -> tuple[ModelResponse, list[str]]:
    """The final answer and notes.

    `request.tools` are offered for `turns` turns; each turn's calls run in parallel through `run_tool`
    (text, is_error). A call made `repeat_limit` times (tool_call_loop) ends the reading early: its
    repeats are answered "not run" and the next turn must answer. The turn that must answer keeps the tools
    declared once any were used (some vendors require it); a model that still calls tools raises
    `KeptCallingTools` with the message `gave_up(turns, looping)` (default: the detector and its reason).
    `call.phase` says what runs, when a call is given."""
    notes: list[str] = []
    messages = list(request.messages)
    calls_so_far: list[ToolCall] = []
    looping: str | None = None
    for turn in range(turns + 1):
        final = turn == turns or looping is not None
        step = replace(request, messages=messages, tools=request.tools if calls_so_far or not final else [],
                       tools_allowed=not final)  # fmt: skip
        response = await call_model(step)
        if not response.tool_calls:
            return response, notes
        if final:
            detector, reason = ("tool_call_loop", looping) if looping else ("runaway_turns", runaway_turns(
                turn + 2, limit=turns + 1) or "")  # fmt: skip
            message = gave_up(turns, looping) if gave_up else f"{detector}: {reason}"
            raise KeptCallingTools(message, detector=detector, reason=reason)
        looping = tool_call_loop([*calls_so_far, *response.tool_calls], limit=repeat_limit)
        skip = repeated_calls(calls_so_far, response.tool_calls) if looping else set()
        calls_so_far += response.tool_calls
        if call is not None:
            call.phase = f"running {len(response.tool_calls) - len(skip)} tool call(s)"
        messages = [*messages, response.to_message(), *await run_in_parallel(response.tool_calls, run_tool, skip)]
        if looping:
            notes.append(f"stopped {who} early (tool_call_loop): {looping}")
    raise AssertionError("unreachable")  # pragma: no cover


async def run_in_parallel(calls: list[ToolCall], run_tool: RunTool, skip: Collection[int] = ()) -> list[Message]:
    """One turn's tool calls run in parallel; their results in call order. The calls at `skip` are not run:
    their result is an error telling the model to answer."""
    results: list[Message | None] = [None] * len(calls)

    async def one(index: int, call: ToolCall) -> None:
        text, is_error = (NOT_RUN, True) if index in skip else await run_tool(call)
        results[index] = Message.tool_result(call, text, is_error=is_error)

    async with anyio.create_task_group() as tg:
        for index, call in enumerate(calls):
            tg.start_soon(one, index, call)
    return [m for m in results if m is not None]
