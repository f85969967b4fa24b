import anyio
import pytest

from cadre_core import errors
from cadre_core.budget import BudgetExceededError
from cadre_core.call import CallInfo
from cadre_core.models.base import Message, ModelRequest, ModelResponse, Usage
from cadre_core.models.test import TestModel
from cadre_core.routing.checks import OffRailsError
from cadre_core.routing.recorder import Recorder
from cadre_core.routing.wrapper import Tries
from tests.core.conftest import ledger_rows
from tests.core.routing.fakes import raising

pytestmark = pytest.mark.anyio
REQUEST = ModelRequest([Message.user("q")])
USAGE = Usage(input_tokens=1000, output_tokens=500)
SONNET_COST = 1000 * 3e-6 + 500 * 15e-6  # claude-sonnet-4-5: $3/M in, $15/M out


def recorder(model, ledger, *, last=False, will_retry=False, number=1):
    call = CallInfo(server="s", tool="t", thread_id="th1")
    tries = Tries(number=number, will_retry=lambda exc: will_retry)
    return Recorder(model, ref="anthropic:claude-sonnet-4-5", role="oracle", call=call, ledger=ledger,
                    tries=tries, last=last)  # fmt: skip


async def test_an_answer_is_priced_labelled_added_to_the_call_and_recorded(ledger):
    wrapper = recorder(TestModel("fine", usage=USAGE), ledger, number=3)
    response = await wrapper.request(REQUEST)
    assert (response.model, response.cost_usd) == ("anthropic:claude-sonnet-4-5", pytest.approx(SONNET_COST))
    assert wrapper.call.usage_cost_usd == pytest.approx(SONNET_COST) and wrapper.call.usage.input_tokens == 1000
    (row,) = ledger_rows(ledger)
    assert (row["model"], row["outcome"], row["attempt"], row["server"], row["thread_id"]) == (
        "claude-sonnet-4-5", "ok", 3, "s", "th1")  # fmt: skip
    assert row["cost_usd"] == pytest.approx(SONNET_COST) and row["price_version"].startswith("genai-prices")


async def test_a_flagged_answer_is_recorded_off_rails_with_the_check_and_still_paid_for(ledger):
    flagged = OffRailsError(ModelResponse(text="x", usage=USAGE), "leaked_thinking", "<think> in the answer",
                            usable=True)  # fmt: skip
    wrapper = recorder(raising(flagged), ledger)
    with pytest.raises(OffRailsError):
        await wrapper.request(REQUEST)
    (row,) = ledger_rows(ledger)
    assert (row["outcome"], row["detector"]) == ("off_rails", "leaked_thinking")
    assert row["message"] == "<think> in the answer"
    assert flagged.response.cost_usd == pytest.approx(SONNET_COST) == wrapper.call.usage_cost_usd


@pytest.mark.parametrize(
    ("exc", "will_retry", "last", "outcome"),
    [
        (errors.ServerError("500", provider="anthropic"), True, False, "error"),  # it will be retried
        (errors.ServerError("500", provider="anthropic"), False, False, "fallback"),  # the next candidate is tried
        (errors.ServerError("500", provider="anthropic"), False, True, "error"),  # there is no next candidate
        (errors.AuthError("bad key", provider="anthropic"), False, False, "error"),  # nothing can fix it
    ],
)
async def test_a_failure_is_an_error_unless_the_next_candidate_takes_over(ledger, exc, will_retry, last, outcome):
    with pytest.raises(type(exc)):
        await recorder(raising(exc), ledger, will_retry=will_retry, last=last).request(REQUEST)
    (row,) = ledger_rows(ledger)
    assert (row["outcome"], row["error_class"], row["cost_usd"]) == (outcome, type(exc).__name__, None)


async def test_a_late_reply_is_recorded_with_its_tokens_and_cost(ledger):
    timeout = errors.ModelTimeoutError("no answer within 1 s", provider="anthropic")
    timeout.late_response = ModelResponse(text="late", usage=USAGE)
    with pytest.raises(errors.ModelTimeoutError):
        await recorder(raising(timeout), ledger).request(REQUEST)
    (row,) = ledger_rows(ledger)
    assert (row["outcome"], row["input_tokens"], row["cost_usd"]) == ("fallback", 1000, pytest.approx(SONNET_COST))


async def test_cancellations_refusals_and_bugs_are_recorded_and_raised(ledger):
    with anyio.move_on_after(0.05):
        await recorder(TestModel(delay_s=5), ledger).request(REQUEST)
    with pytest.raises(BudgetExceededError):
        await recorder(raising(BudgetExceededError("over the cap")), ledger).request(REQUEST)
    with pytest.raises(KeyError):
        await recorder(raising(KeyError("oops")), ledger).request(REQUEST)
    recorder(TestModel(), ledger).cancelled_before_start(2)
    assert [(r["outcome"], r["error_class"], r["attempt"]) for r in ledger_rows(ledger)] == [
        ("cancelled", "Cancelled", 1), ("budget_refused", "BudgetExceededError", 1), ("error", "KeyError", 1),
        ("cancelled", "Cancelled", 2)]  # fmt: skip


async def test_without_a_ledger_or_tracing_nothing_is_written_but_the_answer_is_still_priced():
    response = await recorder(TestModel(usage=USAGE), None).request(REQUEST)
    assert response.cost_usd == pytest.approx(SONNET_COST)
