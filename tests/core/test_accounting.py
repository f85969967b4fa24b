"""Tool accounting: `tool_errors` puts every model call's spend into the result, or into the error."""

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from mcp.server.mcpserver.exceptions import ToolError

from cadre_core.accounting import recording, tool_errors, with_cost
from cadre_core.call import CallInfo
from cadre_core.errors import CadreError
from cadre_core.kit import Kit
from cadre_core.models.base import Usage

pytestmark = pytest.mark.anyio
KIT = Kit("oracle", "cadre-test")  # new_call opens nothing: no config, no router


def spend(cost: float, input_tokens: int, *, unpriced: bool = False, thread_id: str | None = None) -> CallInfo:
    """What the router leaves on a call after one attempt (router `_settle`)."""
    call = KIT.new_call("tool", thread_id)
    call.usage_cost_usd += cost
    call.usage = call.usage + Usage(input_tokens=input_tokens, output_tokens=10, reasoning_tokens=2)
    call.unpriced = unpriced
    return call


async def test_a_result_carries_the_spend_of_every_call_including_those_of_its_tasks():
    async def ask(cost: float, input_tokens: int) -> None:
        await anyio.lowlevel.checkpoint()
        spend(cost, input_tokens)

    @tool_errors
    async def tool() -> dict[str, Any]:
        async with anyio.create_task_group() as tg:  # second_opinions asks vendors in parallel tasks
            tg.start_soon(ask, 0.25, 100)
            tg.start_soon(ask, 0.5, 200)
        return {"answer": "yes"}

    assert await tool() == {
        "answer": "yes",
        "cost_usd": 0.75,
        "tokens": {"input": 300, "output": 20, "reasoning": 4, "cache_read": 0},
    }


async def test_a_tool_without_model_calls_reports_zero_and_narrower_results_are_left_alone():
    @tool_errors
    async def lookup() -> dict[str, Any]:
        return {"hits": []}

    @tool_errors
    async def text() -> str:
        spend(0.1, 5)
        return "plain"

    assert await lookup() == {"hits": [], "cost_usd": 0.0, "tokens": {"input": 0, "output": 0, "reasoning": 0,
                                                                        "cache_read": 0}}  # fmt: skip
    assert await text() == "plain"


async def test_only_unpriced_models_make_the_cost_unknown_not_zero():
    @tool_errors
    async def local() -> dict[str, Any]:
        spend(0.0, 50, unpriced=True)
        return {}

    @tool_errors
    async def mixed() -> dict[str, Any]:
        spend(0.0, 50, unpriced=True)
        spend(0.125, 50)
        return {}

    assert (await local())["cost_usd"] is None
    assert (await mixed())["cost_usd"] == 0.125


async def test_a_failure_says_what_was_spent_and_where_to_trace_it():
    @tool_errors
    async def tool(question: str) -> dict[str, Any]:
        spend(0.25, 100, thread_id="t_1")
        raise CadreError("every candidate failed; set another provider key")

    with pytest.raises(ToolError) as raised:
        await tool(question="q")
    assert str(raised.value) == (
        "every candidate failed; set another provider key (spent $0.2500 on 110 tokens before failing; "
        "`cadre trace t_1` lists the attempts)"
    )


async def test_a_finished_jobs_own_cost_is_kept_and_each_recording_counts_only_its_calls():
    with recording() as outer:
        spend(1.0, 10)
        with recording() as job:  # a background job records its calls apart from the tool call polling it
            spend(0.5, 10)
            result = with_cost({"answer": "a"}, job)
        assert with_cost(result, outer) == result
    assert result["cost_usd"] == 0.5 and len(outer) == 1
    assert KIT.new_call("outside") is not None  # no tool call recording: nothing to count toward


def test_a_calls_cost_is_rounded_and_unknown_only_when_nothing_priced_was_paid():
    assert CallInfo(usage_cost_usd=0.1234567).cost_usd == 0.123457
    assert CallInfo(unpriced=True).cost_usd is None
    assert CallInfo(usage_cost_usd=0.5, unpriced=True).cost_usd == 0.5
