import time

import anyio
import pytest

from cadre_core import errors
from cadre_core.breaker import Breaker
from cadre_core.call import CallInfo
from cadre_core.models.base import Message, ModelRequest, ModelResponse
from cadre_core.models.test import FunctionModel, TestModel
from cadre_core.routing.checks import OffRailsError
from cadre_core.routing.retry import Retrying, RetryPolicy, TimeLimit
from cadre_core.routing.wrapper import Tries
from tests.core.routing.fakes import scripted

pytestmark = pytest.mark.anyio
REQUEST = ModelRequest([Message.user("q")])


def retrying(model, *, retries=2, max_retry_after_s=60.0, breaker=None, **kw):
    sleeps = []

    async def sleep(seconds):
        sleeps.append(seconds)

    wrapper = Retrying(model, ref="openai:a", policy=RetryPolicy(retries, 0.01, 0.05, max_retry_after_s),
                       breaker=breaker or Breaker(min_attempts=2), call_id=1, tries=Tries(), status=CallInfo(),
                       clock=lambda: 1000.0, sleep=kw.pop("sleep", sleep), **kw)  # fmt: skip
    wrapper.sleeps = sleeps
    return wrapper


async def test_a_slow_answer_times_out_and_a_long_limit_is_not_retried():
    with pytest.raises(errors.ModelTimeoutError) as short:
        await TimeLimit(TestModel(delay_s=5), 0.05, ref="openai:a").request(REQUEST)
    assert short.value.retryable and short.value.late_response is None
    assert str(short.value) == "openai:a: no answer within 0.05 s"

    silent = TestModel()

    async def never(request):
        raise TimeoutError

    silent.request = never  # as if the provider stayed silent for the whole 200 s
    with pytest.raises(errors.ModelTimeoutError) as long:
        await TimeLimit(silent, 200, ref="openai:a").request(REQUEST)
    assert not long.value.retryable and long.value.fallback


async def test_a_reply_after_the_limit_is_discarded_but_kept_on_the_error():
    def blocking(request, model):  # holds the event loop, so the time-out cannot cancel it in time
        time.sleep(0.1)
        return ModelResponse(text="too late")

    with pytest.raises(errors.ModelTimeoutError) as info:
        await TimeLimit(FunctionModel(blocking), 0.02, ref="openai:a").request(REQUEST)
    assert info.value.late_response.text == "too late"


async def test_transient_errors_are_retried_with_backoff_then_answered():
    boom = errors.ServerError("HTTP 500", provider="openai", model="a")
    model = scripted(boom, boom, ModelResponse(text="fine"))
    wrapper = retrying(model)
    assert (await wrapper.request(REQUEST)).text == "fine"
    assert len(model.requests) == 3 and len(wrapper.sleeps) == 2
    assert all(0.005 <= s <= 0.05 for s in wrapper.sleeps)
    assert wrapper.tries.number == 4, "the next attempt on this candidate is number 4"
    assert wrapper.status.model == "openai:a"


async def test_it_gives_up_after_its_retries_and_counts_the_failures_on_the_breaker():
    boom = errors.OverloadedError("HTTP 529", provider="openai", model="a")
    breaker = Breaker(min_attempts=2, window=10)
    wrapper = retrying(scripted(boom, boom), retries=1, breaker=breaker)
    with pytest.raises(errors.OverloadedError):
        await wrapper.request(REQUEST)
    assert breaker.state(1000.0) == "closed", "two failures from one call never open it"
    wrapper.call_id = 2
    wrapper.wrapped = scripted(boom)
    wrapper.policy = RetryPolicy(0)
    with pytest.raises(errors.OverloadedError):
        await wrapper.request(REQUEST)
    assert breaker.state(1000.0) == "open"


async def test_errors_retrying_cannot_fix_are_raised_at_once():
    wrapper = retrying(scripted(errors.AuthError("bad key", provider="openai")))
    with pytest.raises(errors.AuthError):
        await wrapper.request(REQUEST)
    assert wrapper.sleeps == []
    limited = retrying(scripted(errors.RateLimitError("429", provider="openai", retry_after=3600)))
    with pytest.raises(errors.RateLimitError):
        await limited.request(REQUEST)
    assert limited.sleeps == [], "a retry-after over max_retry_after_s goes to the next candidate instead"


async def test_an_unknown_model_trips_the_breaker_and_a_flagged_answer_counts_as_answered():
    breaker = Breaker()
    with pytest.raises(errors.ModelNotFoundError):
        await retrying(scripted(errors.ModelNotFoundError("404", provider="openai")), breaker=breaker).request(REQUEST)
    assert breaker.state(1000.0) == "open"

    breaker = Breaker(min_attempts=1)
    breaker.trip(900.0, "HTTP 404")  # half-open at 1000: the next answer closes it
    flagged = OffRailsError(ModelResponse(text="x"), "truncated", "cut off", usable=True)
    wrapper = retrying(scripted(flagged), breaker=breaker)
    with pytest.raises(OffRailsError):
        await wrapper.request(REQUEST)
    assert breaker.state(1000.0) == "closed" and wrapper.sleeps == []


async def test_a_cancel_during_the_backoff_reports_the_attempt_that_never_started():
    cancelled = []

    async def slow_sleep(seconds):
        await anyio.sleep(30)

    boom = errors.ServerError("HTTP 500", provider="openai")
    wrapper = retrying(scripted(boom), sleep=slow_sleep, on_cancelled_wait=cancelled.append)
    with anyio.move_on_after(0.1):
        await wrapper.request(REQUEST)
    assert cancelled == [2]
    assert wrapper.status.phase.startswith("retrying in")


def test_the_policy_retries_only_retryable_errors_within_its_budget():
    policy = RetryPolicy(retries=2, max_retry_after_s=10)
    busy = errors.OverloadedError("busy", provider="openai")
    assert policy.will_retry(busy, 1) and policy.will_retry(busy, 2) and not policy.will_retry(busy, 3)
    assert not policy.will_retry(errors.ModelNotFoundError("404", provider="openai"), 1)
    assert not policy.will_retry(errors.RateLimitError("429", provider="openai", retry_after=11), 1)
    assert policy.backoff(1, 5.0) >= 5.0
