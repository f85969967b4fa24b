import sqlite3

import anyio
import pytest

from cadre_core import errors
from cadre_core.budget import Budget, BudgetedModel, BudgetExceededError, Caps
from cadre_core.call import CallInfo
from cadre_core.models.base import Message, ModelRequest, ModelResponse, Usage
from cadre_core.models.test import TestModel
from cadre_core.routing.wrapper import Tries
from tests.core.routing.fakes import raising

pytestmark = pytest.mark.anyio
REQUEST = ModelRequest([Message.user("x" * 3500)], max_output_tokens=1000)
# gpt-5.2 ($1.75/M in, $14/M out): (1008 x 1.5 + 1 input tokens, 1000 output) x 1.25
WORST = ((int((3500 / 3.5 + 8) * 1.5) + 1) * 1.75e-6 + 1000 * 14e-6) * 1.25


def budgeted(model, tmp_path, caps=None):
    caps = caps or Caps(per_day=100.0)
    budget = Budget(tmp_path / "budget.sqlite")
    return BudgetedModel(model, budget, caps, ref="openai:gpt-5.2", role="oracle", call=CallInfo(tool="ask"),
                         tries=Tries(number=2), timeout_s=60)  # fmt: skip


def spend(tmp_path):
    rows = sqlite3.connect(tmp_path / "budget.sqlite").execute("SELECT amount, settled, attempt, tool FROM spend")
    return rows.fetchall()


async def test_an_answer_settles_to_its_real_cost(tmp_path):
    answer = TestModel("ok", usage=Usage(input_tokens=10, output_tokens=5))
    await budgeted(answer, tmp_path).request(REQUEST)
    ((amount, settled, attempt, tool),) = spend(tmp_path)
    assert (amount, settled, attempt, tool) == (pytest.approx(10 * 1.75e-6 + 5 * 14e-6), 1, 2, "ask")


async def test_a_request_over_a_cap_is_refused_before_it_is_sent(tmp_path):
    model = TestModel()
    with pytest.raises(BudgetExceededError, match="per_call_usd"):
        await budgeted(model, tmp_path, Caps(per_call=WORST / 2)).request(REQUEST)
    assert model.requests == [] and spend(tmp_path) == []


async def test_a_time_out_or_a_cancellation_keeps_the_worst_case_held(tmp_path):
    with pytest.raises(errors.ModelTimeoutError):
        await budgeted(raising(errors.ModelTimeoutError("504", provider="openai")), tmp_path).request(REQUEST)
    with anyio.move_on_after(0.05):
        await budgeted(TestModel(delay_s=5), tmp_path).request(REQUEST)
    assert [amount for amount, *_ in spend(tmp_path)] == [pytest.approx(WORST)] * 2


async def test_a_late_reply_settles_at_its_cost_and_other_failures_at_nothing(tmp_path):
    late = errors.ModelTimeoutError("no answer within 1 s", provider="openai")
    late.late_response = ModelResponse(text="late", usage=Usage(input_tokens=100, output_tokens=10))
    with pytest.raises(errors.ModelTimeoutError):
        await budgeted(raising(late), tmp_path).request(REQUEST)
    with pytest.raises(errors.ServerError):
        await budgeted(raising(errors.ServerError("500", provider="openai")), tmp_path).request(REQUEST)
    assert [amount for amount, *_ in spend(tmp_path)] == [pytest.approx(100 * 1.75e-6 + 10 * 14e-6), 0.0]
