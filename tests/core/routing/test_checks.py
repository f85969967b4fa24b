import pytest

from cadre_core import errors
from cadre_core.models.base import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition
from cadre_core.models.test import FunctionModel, TestModel
from cadre_core.routing.checks import INVALID_OUTPUT, CheckedModel, OffRailsError

pytestmark = pytest.mark.anyio


def must_have_answer(response):
    if not isinstance(response.output, dict) or "answer" not in response.output:
        raise errors.OutputInvalidError("expected a JSON object with an 'answer' field")


async def test_a_valid_clean_answer_passes_through():
    request = ModelRequest([Message.user("q")], output_schema={"type": "object"}, validate=must_have_answer)
    response = await CheckedModel(TestModel(output={"answer": "yes"})).request(request)
    assert response.output == {"answer": "yes"}


async def test_an_answer_the_validator_rejects_is_raised_unusable_before_any_detector_runs():
    request = ModelRequest([Message.user("q")], validate=must_have_answer)
    with pytest.raises(OffRailsError) as info:
        await CheckedModel(TestModel("<thinking>x</thinking> not json")).request(request)
    assert (info.value.detector, info.value.usable) == (INVALID_OUTPUT, False)
    assert str(info.value) == "invalid structured output: expected a JSON object with an 'answer' field"


async def test_a_flagged_answer_is_raised_usable_with_the_detector_and_the_answer():
    with pytest.raises(OffRailsError) as info:
        await CheckedModel(TestModel("<thinking>hmm</thinking> lock it")).request(ModelRequest([Message.user("q")]))
    assert (info.value.detector, info.value.usable, info.value.response.text) == (
        "leaked_thinking", True, "<thinking>hmm</thinking> lock it")  # fmt: skip


async def test_tool_calls_on_a_turn_that_must_answer_are_runaway_turns():
    tools = [ToolDefinition("grep", "search", {"type": "object", "properties": {}})]
    model = FunctionModel(lambda request, m: ModelResponse(tool_calls=[ToolCall("c", "grep", {})]))
    await CheckedModel(model).request(ModelRequest([Message.user("q")], tools=tools))  # tools allowed: fine
    with pytest.raises(OffRailsError, match="runaway_turns"):
        await CheckedModel(model).request(ModelRequest([Message.user("q")], tools=tools, tools_allowed=False))
