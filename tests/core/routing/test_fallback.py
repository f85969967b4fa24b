from dataclasses import dataclass, field

import pytest

from cadre_core import errors
from cadre_core.breaker import Breaker
from cadre_core.budget import BudgetExceededError
from cadre_core.errors import Attempt
from cadre_core.models.base import Message, Model, ModelRequest, ModelResponse
from cadre_core.models.test import TestModel
from cadre_core.routing.checks import INVALID_OUTPUT, OffRailsError
from cadre_core.routing.fallback import FallbackModel, Ready
from tests.core.routing.fakes import raising

pytestmark = pytest.mark.anyio
REQUEST = ModelRequest([Message.user("q")])
NOW = 1000.0


@dataclass
class FakeChoice:
    """A candidate that is always ready (unless `skip` says why not) and answers with `model`."""

    ref: str
    model: Model
    skip: Attempt | None = None
    breaker: Breaker = field(default_factory=Breaker)
    built: list[bool] = field(default_factory=list)
    """The `last` flag of each model built."""

    async def ready(self, request):
        if self.skip is not None:
            return self.skip
        return Ready(request, self._build)

    def _build(self, call_id, last):
        self.built.append(last)
        return self.model


def route(*choices):
    return FallbackModel("oracle", list(choices), clock=lambda: NOW)


async def test_the_first_choice_that_answers_wins_and_only_the_last_is_told_it_is_last():
    first = FakeChoice("openai:a", raising(errors.ServerError("HTTP 500", provider="openai")))
    second = FakeChoice("anthropic:b", TestModel("from b"))
    assert (await route(first, second).request(REQUEST)).text == "from b"
    assert (first.built, second.built) == ([False], [True])


async def test_when_all_fail_every_attempt_and_skip_is_listed():
    skipped = FakeChoice("google:c", TestModel(), skip=Attempt("google:c", "no_key", "no API key", env_var="K"))
    broken = FakeChoice("openai:a", raising(errors.ServerError("HTTP 500", provider="openai")))
    invalid = OffRailsError(ModelResponse(text="no"), INVALID_OUTPUT, "not json", usable=False)
    with pytest.raises(errors.AllCandidatesFailedError) as info:
        await route(skipped, broken, FakeChoice("anthropic:b", raising(invalid))).request(REQUEST)
    assert [(a.model, a.outcome, a.error) for a in info.value.attempts] == [
        ("google:c", "no_key", "no API key"), ("openai:a", "failed", "HTTP 500"),
        ("anthropic:b", "off_rails", "invalid structured output: not json")]  # fmt: skip


async def test_an_error_no_model_can_fix_is_raised_without_trying_the_rest():
    backup = TestModel("never")
    with pytest.raises(errors.AuthError):
        await route(FakeChoice("openai:a", raising(errors.AuthError("bad key"))),
                    FakeChoice("anthropic:b", backup)).request(REQUEST)  # fmt: skip
    assert backup.requests == []


async def test_a_flagged_answer_set_aside_is_kept_when_nothing_better_comes():
    flagged = OffRailsError(ModelResponse(text="flagged"), "leaked_thinking", "tags", usable=True)
    failing = FakeChoice("anthropic:b", raising(errors.ServerError("HTTP 500", provider="anthropic")))
    kept = await route(FakeChoice("openai:a", raising(flagged)), failing).request(REQUEST)
    assert kept.text == "flagged" and "no later candidate answered" in kept.warnings[-1]

    refused = FakeChoice("anthropic:b", raising(BudgetExceededError("over the cap")))
    kept = await route(FakeChoice("openai:a", raising(flagged)), refused).request(REQUEST)
    assert "the next candidate failed (over the cap), so the flagged answer is kept" in kept.warnings[-1]


async def test_a_choice_with_an_open_breaker_is_skipped_but_tried_before_failing_untried():
    soon, later = Breaker(open_s=30), Breaker(open_s=30)
    soon.trip(NOW - 20, "HTTP 404")
    later.trip(NOW - 5, "HTTP 404")
    open_soon = FakeChoice("openai:a", TestModel("recovering"), breaker=soon)
    open_later = FakeChoice("google:c", TestModel("never"), breaker=later)
    broken = FakeChoice("anthropic:b", raising(errors.ServerError("HTTP 500", provider="anthropic")))
    assert (await route(open_later, open_soon, broken).request(REQUEST)).text == "recovering"
    assert open_later.built == [] and open_soon.built == [True]


async def test_the_breaker_probe_is_released_after_each_try():
    breaker = Breaker(open_s=30)
    breaker.trip(NOW - 31, "HTTP 404")  # half-open: one call may probe
    probing = FakeChoice("openai:a", raising(errors.ServerError("500", provider="openai")), breaker=breaker)
    await route(probing, FakeChoice("anthropic:b", TestModel())).request(REQUEST)
    assert breaker.admit(999, NOW + 100) is None, "no call holds the probe any more"
