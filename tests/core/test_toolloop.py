"""The one tool loop the oracle, the librarian and deep search share."""

from __future__ import annotations

import pytest

from cadre_core.models.base import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition
from cadre_core.toolloop import NOT_RUN, KeptCallingTools, kit_caller, tool_loop

pytestmark = pytest.mark.anyio
TOOLS = [ToolDefinition("read", "Read a file.", {"type": "object", "properties": {"path": {"type": "string"}}})]
REQUEST = ModelRequest([Message.user("why?")], tools=TOOLS)


def calling(*paths: str) -> ModelResponse:
    return ModelResponse(tool_calls=[ToolCall(f"c-{p}", "read", {"path": p}) for p in paths], finish_reason="tool_use")


class Script:
    """A model that replies from a list, and a tool that records what it ran."""

    def __init__(self, *replies: ModelResponse):
        self.replies, self.requests, self.ran = list(replies), [], []

    async def call_model(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        return self.replies.pop(0)

    async def run_tool(self, call: ToolCall) -> tuple[str, bool]:
        self.ran.append(call.arguments["path"])
        return f"text of {call.arguments['path']}", False


async def test_calls_run_in_parallel_and_results_come_back_in_call_order():
    script = Script(calling("a", "b"), ModelResponse(text="done"))
    response, notes = await tool_loop(script.call_model, REQUEST, turns=3, run_tool=script.run_tool, who="the reading")
    assert response.text == "done" and notes == []
    results = [m for m in script.requests[1].messages if m.role == "tool"]
    assert [(m.tool_call_id, m.text) for m in results] == [("c-a", "text of a"), ("c-b", "text of b")]
    assert sorted(script.ran) == ["a", "b"]


async def test_a_call_at_the_repeat_limit_is_not_run_and_the_next_turn_must_answer():
    script = Script(calling("a"), calling("a", "b"), ModelResponse(text="done"))
    response, notes = await tool_loop(script.call_model, REQUEST, turns=5, run_tool=script.run_tool,
                                      who="the reading", repeat_limit=2)  # fmt: skip
    assert response.text == "done"
    assert script.ran == ["a", "b"]  # the repeat of a was answered without running
    forced = script.requests[-1]
    assert not forced.tools_allowed and forced.tools == TOOLS  # still declared: some vendors require it
    repeat = [m for m in forced.messages if m.role == "tool"][1]
    assert repeat.is_error and repeat.text == NOT_RUN
    assert notes == ['stopped the reading early (tool_call_loop): read({"path": "a"}) was called 2 times']


async def test_tools_on_the_answer_turn_raise_with_the_detector():
    script = Script(calling("a"), calling("b"), calling("c"))
    with pytest.raises(KeptCallingTools) as caught:
        await tool_loop(script.call_model, REQUEST, turns=2, run_tool=script.run_tool, who="the reading",
                        gave_up=lambda turns, looping: f"gave up after {turns} turns ({looping})")  # fmt: skip
    assert str(caught.value) == "gave up after 2 turns (None)"
    assert (caught.value.detector, caught.value.reason) == ("runaway_turns", "4 turns, over the limit of 3")
    assert [r.tools_allowed for r in script.requests] == [True, True, False]


async def test_with_no_turns_the_first_request_must_answer_without_tools():
    script = Script(ModelResponse(text="straight away"))
    response, _ = await tool_loop(script.call_model, REQUEST, turns=0, run_tool=script.run_tool, who="the reading")
    assert response.text == "straight away"
    assert script.requests[0].tools == [] and not script.requests[0].tools_allowed


async def test_kit_caller_gives_the_host_sample_to_the_first_request_only():
    seen = []

    class Kit:
        async def call_model(self, ctx, request, *, tool, host_sample, call):
            seen.append((ctx, tool, host_sample, call))
            return ModelResponse(text="ok")

    call_model = kit_caller(Kit(), "ctx", tool="consult", call="call-info", host_sample="sample")
    await call_model(REQUEST)
    await call_model(REQUEST)
    assert seen == [("ctx", "consult", "sample", "call-info"), ("ctx", "consult", None, "call-info")]
