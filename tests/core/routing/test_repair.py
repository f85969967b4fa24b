import pytest

from cadre_core import errors
from cadre_core.budget import BudgetExceededError
from cadre_core.models.base import Message, ModelRequest, ModelResponse
from cadre_core.routing.checks import INVALID_OUTPUT, OffRailsError
from cadre_core.routing.repair import Repairing
from cadre_core.routing.wrapper import Tries
from tests.core.routing.fakes import scripted

pytestmark = pytest.mark.anyio
REQUEST = ModelRequest([Message.user("q")])


def invalid(text, reason="expected an 'answer' field"):
    return OffRailsError(ModelResponse(text=text), INVALID_OUTPUT, reason, usable=False)


async def test_an_invalid_answer_gets_one_repair_turn_that_names_the_problem():
    model = scripted(invalid("not json"), ModelResponse(text='{"answer": 1}'))
    tries = Tries()
    assert (await Repairing(model, tries).request(REQUEST)).text == '{"answer": 1}'
    repair = model.requests[1].messages
    assert [m.role for m in repair] == ["user", "assistant", "user"] and repair[1].text == "not json"
    assert "That answer is invalid: expected an 'answer' field" in repair[2].text
    assert tries.phase == "repairing the answer"


async def test_a_second_invalid_answer_is_raised_and_there_is_no_third_turn():
    model = scripted(invalid("no"), invalid("still no", "still wrong"))
    with pytest.raises(OffRailsError, match="still wrong"):
        await Repairing(model, Tries()).request(REQUEST)
    assert len(model.requests) == 2


async def test_a_repair_the_budget_refuses_raises_the_first_problem():
    with pytest.raises(OffRailsError, match="expected an 'answer' field"):
        await Repairing(scripted(invalid("no"), BudgetExceededError("over")), Tries()).request(REQUEST)


async def test_a_repair_that_fails_says_so_with_the_first_cause_unless_nothing_can_fix_it():
    busy = errors.OverloadedError("HTTP 529: Overloaded", provider="anthropic")
    with pytest.raises(errors.OverloadedError) as info:
        await Repairing(scripted(invalid("no"), busy), Tries()).request(REQUEST)
    assert info.value.detail == (
        "the repair turn failed: HTTP 529: Overloaded (the first answer was invalid: expected an 'answer' field)"
    )
    denied = errors.AuthError("bad key", provider="anthropic")
    with pytest.raises(errors.AuthError) as info:
        await Repairing(scripted(invalid("no"), denied), Tries()).request(REQUEST)
    assert info.value.detail == "authentication failed: bad key."


async def test_a_flagged_but_valid_answer_is_not_repaired():
    flagged = OffRailsError(ModelResponse(text="x"), "truncated", "cut off", usable=True)
    model = scripted(flagged)
    with pytest.raises(OffRailsError, match="truncated"):
        await Repairing(model, Tries()).request(REQUEST)
    assert len(model.requests) == 1
