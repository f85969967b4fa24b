import pytest

from cadre_core.models.base import Message, ModelRequest, ModelResponse
from cadre_core.models.test import FunctionModel
from cadre_core.routing.checks import INVALID_OUTPUT, OffRailsError
from cadre_core.routing.policy import OffRailsPolicy
from tests.core.routing.fakes import raising

pytestmark = pytest.mark.anyio
REQUEST = ModelRequest([Message.user("q")])


def flagged():
    return OffRailsError(ModelResponse(text="<think>x</think> y"), "leaked_thinking", "tags", usable=True)


async def test_warn_keeps_the_flagged_answer_with_a_warning():
    response = await OffRailsPolicy(raising(flagged()), ref="openai:a", fall_back=False).request(REQUEST)
    assert response.text == "<think>x</think> y"
    assert response.warnings == ["openai:a answer flagged by leaked_thinking: tags"]


async def test_fallback_sets_the_answer_aside_with_its_warning():
    with pytest.raises(OffRailsError) as info:
        await OffRailsPolicy(raising(flagged()), ref="openai:a", fall_back=True).request(REQUEST)
    assert info.value.response.warnings == ["openai:a answer flagged by leaked_thinking: tags"]


async def test_an_invalid_answer_and_a_clean_one_pass_through_untouched():
    bad = OffRailsError(ModelResponse(text="no"), INVALID_OUTPUT, "not json", usable=False)
    with pytest.raises(OffRailsError):
        await OffRailsPolicy(raising(bad), ref="openai:a", fall_back=False).request(REQUEST)
    assert bad.response.warnings == []
    clean = await OffRailsPolicy(FunctionModel(lambda r, m: "fine"), ref="openai:a", fall_back=False).request(REQUEST)
    assert (clean.text, clean.warnings) == ("fine", [])
