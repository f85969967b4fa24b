import anyio
import pytest

from cadre_core import errors
from cadre_core.call import CallInfo
from cadre_core.models.base import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition, Usage
from cadre_core.models.sampling import SamplingModel
from cadre_core.models.test import FunctionModel, TestModel
from cadre_core.router import Router
from cadre_core.testing import RecordingHandler, mock_http_client
from tests.core.conftest import ledger_rows, make_config

pytestmark = pytest.mark.anyio
REQUEST = ModelRequest([Message.user("hello")], max_output_tokens=100)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def scripted(**by_model):
    """A model factory returning the given fakes by `provider:model`."""

    def factory(candidate, config):
        return by_model[candidate.model]

    return factory


def failing(exc_factory, name):
    calls = []

    def fn(request, model):
        calls.append(request)
        raise exc_factory()

    model = FunctionModel(fn, model_name=name)
    model.calls = calls
    return model


def make_router(config, ledger=None, clock=None, **models):
    sleeps = []

    async def sleep(seconds):
        sleeps.append(seconds)

    router = Router(config, ledger, model_factory=scripted(**models), sleep=sleep, clock=clock or Clock())
    router.sleeps = sleeps
    return router


async def test_falls_back_in_order_after_retries_and_records_each_attempt(keys, ledger):
    config = make_config(oracle=["openai:gpt-5.2", "anthropic:claude-sonnet-4-5"])
    broken = failing(lambda: errors.ServerError("HTTP 500", provider="openai", model="gpt-5.2"), "gpt-5.2")
    good = TestModel("fine", usage=Usage(input_tokens=1000, output_tokens=500))
    router = make_router(config, ledger, **{"openai:gpt-5.2": broken, "anthropic:claude-sonnet-4-5": good})
    response = await router.request("oracle", REQUEST, CallInfo(server="s", tool="t", thread_id="th1"))
    assert response.text == "fine"
    assert len(broken.calls) == 3  # 1 try + 2 retries, no more
    assert len(router.sleeps) == 2
    rows = ledger_rows(ledger)
    assert [(r["model"], r["outcome"], r["attempt"]) for r in rows] == [
        ("gpt-5.2", "error", 1),
        ("gpt-5.2", "error", 2),
        ("gpt-5.2", "fallback", 3),
        ("claude-sonnet-4-5", "ok", 1),
    ]
    assert rows[0]["error_class"] == "ServerError"
    assert rows[-1]["cost_usd"] == pytest.approx(1000 * 3e-6 + 500 * 15e-6)
    assert rows[-1]["price_version"].startswith("genai-prices")
    assert {r["thread_id"] for r in rows} == {"th1"}
    assert response.cost_usd == pytest.approx(0.0105)


async def test_one_unlucky_call_never_opens_the_circuit_but_a_sustained_failure_rate_does(keys):
    clock = Clock()
    config = make_config(search=["google:gemini-3-flash-preview", "anthropic:claude-haiku-4-5"])
    flaky = failing(lambda: errors.OverloadedError("HTTP 529: overloaded", provider="google"), "gemini-3-flash-preview")
    backup = TestModel("backup")
    router = make_router(
        config,
        clock=clock,
        **{"google:gemini-3-flash-preview": flaky, "anthropic:claude-haiku-4-5": backup},
    )
    await router.request("search", REQUEST)
    assert len(flaky.calls) == 3
    await router.request("search", REQUEST)
    assert len(flaky.calls) == 6, "one failed call (3 attempts) must not open the circuit"
    clock.now += 10
    routed = router.model("search")
    assert (await routed.request(REQUEST)).text == "backup"
    assert len(flaky.calls) == 6, "5 of 5 recent attempts from two calls failed: the circuit is open"
    assert router.breaker("google:gemini-3-flash-preview").retry_in(clock.now) == pytest.approx(20)
    backup.error = errors.ServerError("HTTP 500", provider="anthropic", model="claude-haiku-4-5")
    with pytest.raises(errors.AllCandidatesFailedError) as info:
        await router.request("search", REQUEST)
    assert (
        "google:gemini-3-flash-preview: skipped: circuit open after 5 of 5 recent attempts failed "
        "(last: HTTP 529: overloaded); retry in 20 s" in str(info.value)
    )
    assert len(flaky.calls) == 9, "with every other candidate failed, the open one is tried rather than none"


async def test_half_open_lets_one_probe_through_a_failed_probe_reopens_and_an_answer_closes(keys):
    clock = Clock()
    config = make_config(oracle=["openai:a", "anthropic:b"])
    config.router.retries_per_candidate = 0
    replies = []

    def fn(request, model):
        replies.append(request)
        if len(replies) <= 6:
            raise errors.ServerError("HTTP 500: boom", provider="openai", model="a")
        return ModelResponse(text="a is back")

    flaky = FunctionModel(fn, model_name="a")
    router = make_router(config, clock=clock, **{"openai:a": flaky, "anthropic:b": TestModel("b")})
    for _ in range(5):  # 5 failed calls of one attempt each: 5 of 5 failed, the circuit opens
        assert (await router.request("oracle", REQUEST)).text == "b"
    breaker = router.breaker("openai:a")
    assert breaker.state(clock.now) == "open" and len(replies) == 5
    clock.now += 31
    assert breaker.state(clock.now) == "half_open"
    assert (await router.request("oracle", REQUEST)).text == "b"  # the probe fails: open for another 30 s
    assert len(replies) == 6 and breaker.state(clock.now) == "open"
    assert "a probe failed" in breaker.admit(0, clock.now)
    clock.now += 31
    assert (await router.request("oracle", REQUEST)).text == "a is back"
    assert breaker.state(clock.now) == "closed"


async def test_a_half_open_model_takes_one_probe_while_concurrent_calls_go_elsewhere(keys):
    clock = Clock()
    config = make_config(oracle=["openai:a", "anthropic:b"])
    slow_probe = TestModel("a", delay_s=0.2)
    router = make_router(config, clock=clock, **{"openai:a": slow_probe, "anthropic:b": TestModel("b")})
    breaker = router.breaker("openai:a")
    breaker.trip(clock.now, "HTTP 404")
    clock.now += 31
    results = []

    async def one():
        results.append((await router.request("oracle", REQUEST)).text)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(one)
    assert sorted(results) == ["a", "b", "b", "b"]
    assert breaker.state(clock.now) == "closed"


async def test_the_breaker_is_per_provider_model_and_shared_across_roles(keys):
    clock = Clock()
    config = make_config(oracle=["openai:a", "anthropic:b"], review=["openai:a", "google:c"])
    down = failing(lambda: errors.OverloadedError("HTTP 503: busy", provider="openai", model="a"), "a")
    router = make_router(
        config, clock=clock, **{"openai:a": down, "anthropic:b": TestModel("b"), "google:c": TestModel("c")}
    )
    await router.request("oracle", REQUEST)
    await router.request("review", REQUEST)
    assert len(down.calls) == 6
    assert (await router.request("review", REQUEST)).text == "c"
    assert (await router.request("oracle", REQUEST)).text == "b"
    assert len(down.calls) == 6
    assert router.breaker("anthropic:b").state(clock.now) == "closed"


async def test_cooldown_zero_turns_the_breaker_off(keys):
    config = make_config(oracle=["openai:a", "anthropic:b"])
    config.router.cooldown_s = 0
    down = failing(lambda: errors.ServerError("HTTP 500", provider="openai", model="a"), "a")
    router = make_router(config, **{"openai:a": down, "anthropic:b": TestModel("b")})
    for _ in range(4):
        await router.request("oracle", REQUEST)
    assert len(down.calls) == 12


async def test_retry_after_is_honoured_and_a_long_one_falls_back_at_once(keys):
    config = make_config(oracle=["openai:a", "anthropic:b"])
    limited = failing(lambda: errors.RateLimitError("429", provider="openai", retry_after=4.0), "a")
    router = make_router(config, **{"openai:a": limited, "anthropic:b": TestModel("ok")})
    await router.request("oracle", REQUEST)
    assert router.sleeps and all(s >= 4.0 for s in router.sleeps)

    config = make_config(oracle=["openai:a", "anthropic:b"])
    very_limited = failing(lambda: errors.RateLimitError("429", provider="openai", retry_after=3600), "a")
    router = make_router(config, **{"openai:a": very_limited, "anthropic:b": TestModel("ok")})
    assert (await router.request("oracle", REQUEST)).text == "ok"
    assert len(very_limited.calls) == 1
    assert router.sleeps == []


async def test_backoff_is_jittered_and_capped(keys):
    router = make_router(make_config(oracle=["openai:a"]))
    delays = {round(router.backoff(1, None), 6) for _ in range(20)}
    assert len(delays) > 1
    assert all(0.005 <= d <= 0.01 for d in delays)
    assert all(router.backoff(10, None) <= 0.05 for _ in range(20))


async def test_auth_error_fails_fast_without_fallback(keys, ledger):
    config = make_config(oracle=["openai:a", "anthropic:b"])
    denied = failing(lambda: errors.AuthError("bad key", env_var="OPENAI_API_KEY", provider="openai"), "a")
    backup = TestModel("never")
    router = make_router(config, ledger, **{"openai:a": denied, "anthropic:b": backup})
    with pytest.raises(errors.AuthError, match="OPENAI_API_KEY"):
        await router.request("oracle", REQUEST)
    assert len(denied.calls) == 1
    assert backup.requests == []
    assert [r["outcome"] for r in ledger_rows(ledger)] == ["error"]


async def test_bug_in_a_model_is_not_swallowed(keys, ledger):
    config = make_config(oracle=["openai:a", "anthropic:b"])
    buggy = failing(lambda: KeyError("oops"), "a")
    router = make_router(config, ledger, **{"openai:a": buggy, "anthropic:b": TestModel()})
    with pytest.raises(KeyError):
        await router.request("oracle", REQUEST)
    assert ledger_rows(ledger)[0]["error_class"] == "KeyError"


async def test_missing_keys_are_skipped_with_a_note_and_named_when_all_missing(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    config = make_config(oracle=["openai:a", "anthropic:b"])
    router = make_router(config, **{"anthropic:b": TestModel("via anthropic")})
    assert (await router.request("oracle", REQUEST)).text == "via anthropic"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(errors.AllCandidatesFailedError) as info:
        await router.request("oracle", REQUEST)
    assert str(info.value) == (
        "no model available for the oracle: set OPENAI_API_KEY or ANTHROPIC_API_KEY "
        "(`cadre doctor` shows what was found)"
    )
    assert info.value.missing_keys == ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]


async def test_prompt_too_big_for_a_window_skips_to_a_bigger_model(keys):
    config = make_config(
        librarian=[
            {"model": "openai:small", "context_window": 1000},
            {"model": "anthropic:big", "context_window": 10**6},
        ]
    )
    small, big = TestModel("small"), TestModel("big")
    router = make_router(config, **{"openai:small": small, "anthropic:big": big})
    request = ModelRequest([Message.user("x" * 20_000)], max_output_tokens=100)
    assert (await router.request("librarian", request)).text == "big"
    assert small.requests == []
    config = make_config(librarian=[{"model": "openai:small", "context_window": 1000}])
    router = make_router(config, **{"openai:small": small})
    with pytest.raises(errors.AllCandidatesFailedError, match="context_too_large: prompt needs about"):
        await router.request("librarian", request)


async def test_candidate_settings_fill_effort_and_max_tokens_unless_the_caller_sets_them(keys):
    config = make_config(oracle=[{"model": "openai:a", "effort": "high", "max_output_tokens": 777}])
    model = TestModel()
    router = make_router(config, **{"openai:a": model})
    await router.request("oracle", ModelRequest([Message.user("q")]))
    await router.request("oracle", ModelRequest([Message.user("q")], effort="low", max_output_tokens=5))
    assert [(r.effort, r.max_output_tokens) for r in model.requests] == [("high", 777), ("low", 5)]


async def test_timeout_falls_back(keys, ledger):
    config = make_config(search=[{"model": "google:slow", "timeout_s": 0.05}, "anthropic:fast"])
    config.router.retries_per_candidate = 0
    router = make_router(config, ledger, **{"google:slow": TestModel(delay_s=5), "anthropic:fast": TestModel("fast")})
    assert (await router.request("search", REQUEST)).text == "fast"
    rows = ledger_rows(ledger)
    assert rows[0]["outcome"] == "fallback"
    assert rows[0]["error_class"] == "ModelTimeoutError"


async def test_cancellation_stops_the_call_and_is_recorded(keys, ledger):
    config = make_config(oracle=["openai:slow"])
    slow = TestModel(delay_s=30)
    router = make_router(config, ledger, **{"openai:slow": slow})
    with anyio.move_on_after(0.1):
        await router.request("oracle", REQUEST)
    rows = ledger_rows(ledger)
    assert [(r["outcome"], r["error_class"]) for r in rows] == [("cancelled", "Cancelled")]


async def test_tool_requests_skip_models_without_tools(keys):
    config = make_config(oracle=["sampling:host", "openai:a"])
    router = make_router(config, **{"sampling:host": SamplingModel(), "openai:a": TestModel("tools ok")})
    request = ModelRequest([Message.user("q")], tools=[ToolDefinition("read", "read a file", {"type": "object"})])
    assert (await router.request("oracle", request)).text == "tools ok"


async def test_sdk_makes_one_http_call_per_router_attempt(keys):
    """The router owns retries: with an always-429 provider, HTTP calls == router attempts."""
    from cadre_core.models.openai import OpenAIModel

    config = make_config(oracle=["openai:gpt-5.2"])
    attempts = config.router.retries_per_candidate + 1
    rate_limited = (429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after": "0"})
    handler = RecordingHandler(*[rate_limited] * attempts)  # one more request would fail the test
    model = OpenAIModel("gpt-5.2", api_key="k", http_client=mock_http_client(handler))
    router = make_router(config, **{"openai:gpt-5.2": model})
    with pytest.raises(errors.AllCandidatesFailedError, match="RateLimit|429"):
        await router.request("oracle", REQUEST)
    assert len(handler.requests) == attempts


async def test_routed_model_is_a_model_that_falls_back(keys):
    from cadre_core.models.base import Model

    config = make_config(oracle=["openai:a", "anthropic:b"])
    broken = failing(lambda: errors.ServerError("500", provider="openai"), "a")
    router = make_router(config, **{"openai:a": broken, "anthropic:b": TestModel("from b")})
    routed = router.model("oracle")
    assert isinstance(routed, Model)
    response = await routed.request(REQUEST)
    assert isinstance(response, ModelResponse)
    assert (response.text, response.model) == ("from b", "anthropic:b")


async def test_cancel_during_backoff_is_recorded(keys, ledger):
    config = make_config(oracle=["openai:a"])
    flaky = failing(lambda: errors.ServerError("500", provider="openai"), "a")

    async def slow_sleep(seconds):
        await anyio.sleep(30)

    router = Router(config, ledger, model_factory=scripted(**{"openai:a": flaky}), sleep=slow_sleep)
    with anyio.move_on_after(0.2):
        await router.request("oracle", REQUEST)
    assert [r["outcome"] for r in ledger_rows(ledger)] == ["error", "cancelled"]


async def test_stale_model_name_is_cooled_down(keys):
    config = make_config(oracle=["openai:gpt-old", "anthropic:b"])
    stale = failing(lambda: errors.ModelNotFoundError("404", provider="openai"), "gpt-old")
    router = make_router(config, **{"openai:gpt-old": stale, "anthropic:b": TestModel("b")})
    await router.request("oracle", REQUEST)
    await router.request("oracle", REQUEST)
    assert len(stale.calls) == 1


async def test_key_hint_appears_even_when_host_sampling_is_the_last_resort():
    config = make_config(oracle=["openai:a", "google:g", "sampling:host"])
    router = make_router(config, **{"sampling:host": SamplingModel()})
    with pytest.raises(errors.AllCandidatesFailedError) as info:
        await router.request("oracle", REQUEST)
    assert str(info.value) == (
        "no model available for the oracle: set OPENAI_API_KEY or GEMINI_API_KEY "
        "(`cadre doctor` shows what was found), or use a host that supports MCP sampling"
    )
    assert info.value.missing_keys == ["OPENAI_API_KEY", "GEMINI_API_KEY"]
    assert router.missing_keys("oracle") == ["OPENAI_API_KEY", "GEMINI_API_KEY"]


async def test_a_failing_provider_is_reported_in_full_not_as_missing_keys(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    config = make_config(oracle=["openai:a", "google:g", "sampling:host"])
    down = failing(lambda: errors.ModelNotFoundError("404 no such model", provider="google"), "g")
    router = make_router(config, **{"google:g": down, "sampling:host": SamplingModel()})
    with pytest.raises(errors.AllCandidatesFailedError) as info:
        await router.request("oracle", REQUEST)
    message = str(info.value)
    assert "google:g: failed: 404 no such model" in message and "no model available" not in message


def must_have_answer(response):
    if not isinstance(response.output, dict) or "answer" not in response.output:
        raise errors.OutputInvalidError("expected a JSON object with an 'answer' field")


async def test_invalid_output_is_repaired_once_on_the_same_model(keys, ledger):
    config = make_config(oracle=["openai:gpt-5.2", "anthropic:claude-sonnet-4-5"])
    replies = iter(["not json at all", '{"answer": "fixed"}'])

    def fn(request, model):
        return ModelResponse(text=next(replies), usage=Usage(input_tokens=100, output_tokens=10))

    first = FunctionModel(fn, model_name="gpt-5.2")
    router = make_router(config, ledger, **{"openai:gpt-5.2": first, "anthropic:claude-sonnet-4-5": TestModel()})
    request = ModelRequest([Message.user("q")], output_schema={"type": "object"}, validate=must_have_answer)
    response = await router.request("oracle", request)
    assert response.output == {"answer": "fixed"}
    assert "That answer is invalid: expected a JSON object" in first.requests[1].messages[-1].text
    rows = ledger_rows(ledger)
    assert [(r["model"], r["outcome"], r["detector"]) for r in rows] == [
        ("gpt-5.2", "off_rails", "invalid_structured_output"),
        ("gpt-5.2", "ok", None),
    ]
    assert rows[0]["cost_usd"] > 0


async def test_a_failed_repair_falls_back_to_the_next_candidate(keys, ledger):
    config = make_config(oracle=["openai:gpt-5.2", "anthropic:claude-sonnet-4-5"])
    stubborn = TestModel("still not json", model_name="gpt-5.2")
    good = TestModel(output={"answer": "from anthropic"})
    router = make_router(config, ledger, **{"openai:gpt-5.2": stubborn, "anthropic:claude-sonnet-4-5": good})
    request = ModelRequest([Message.user("q")], output_schema={"type": "object"}, validate=must_have_answer)
    response = await router.request("oracle", request)
    assert (response.output, response.model) == ({"answer": "from anthropic"}, "anthropic:claude-sonnet-4-5")
    assert len(stubborn.requests) == 2
    assert [r["outcome"] for r in ledger_rows(ledger)] == ["off_rails", "off_rails", "ok"]


async def test_a_long_timeout_falls_back_without_retrying_the_same_model(keys, ledger):
    config = make_config(oracle=[{"model": "openai:slow", "timeout_s": 200}, "anthropic:fast"])
    slow = TestModel(delay_s=0)
    router = make_router(config, ledger, **{"openai:slow": slow, "anthropic:fast": TestModel("fast")})

    async def never(request):
        raise TimeoutError

    slow.request = never  # as if the provider stayed silent for the whole 200 s
    assert (await router.request("oracle", REQUEST)).text == "fast"
    assert [(r["model"], r["outcome"]) for r in ledger_rows(ledger)] == [("slow", "fallback"), ("fast", "ok")]
    assert router.sleeps == []


async def test_a_flagged_answer_is_kept_with_a_warning_by_default(keys, ledger):
    config = make_config(oracle=["openai:a", "anthropic:b"])
    looping = TestModel("the cache key is wrong and must change now " * 6, model_name="a")
    router = make_router(config, ledger, **{"openai:a": looping, "anthropic:b": TestModel("b")})
    response = await router.request("oracle", REQUEST)
    assert response.model == "openai:a"
    assert response.warnings and "repetition_loop" in response.warnings[0]
    assert [(r["outcome"], r["detector"]) for r in ledger_rows(ledger)] == [("off_rails", "repetition_loop")]


async def test_the_fallback_policy_moves_a_flagged_answer_to_the_next_candidate(keys, ledger):
    config = make_config(oracle=["openai:a", "anthropic:b"])
    config.roles["oracle"].off_rails = "fallback"
    leaky = TestModel("<thinking>hmm</thinking> lock it", model_name="a")
    router = make_router(config, ledger, **{"openai:a": leaky, "anthropic:b": TestModel("clean answer")})
    response = await router.request("oracle", REQUEST)
    assert (response.text, response.warnings) == ("clean answer", [])
    assert [(r["model"], r["outcome"], r["detector"]) for r in ledger_rows(ledger)] == [
        ("a", "off_rails", "leaked_thinking"),
        ("b", "ok", None),
    ]


async def test_a_flagged_answer_is_kept_when_no_later_candidate_can_answer(keys, ledger, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    config = make_config(oracle=["openai:a", "anthropic:b"])
    config.roles["oracle"].off_rails = "fallback"
    leaky = TestModel("<thinking>hmm</thinking> lock it", model_name="a")
    router = make_router(config, ledger, **{"openai:a": leaky, "anthropic:b": TestModel("never asked")})
    response = await router.request("oracle", REQUEST)
    assert response.text.endswith("lock it")
    assert "leaked_thinking" in response.warnings[0] and "kept" in response.warnings[-1]
    assert [(r["outcome"], r["detector"]) for r in ledger_rows(ledger)] == [("off_rails", "leaked_thinking")]


def tool_turn(*calls):
    return ModelResponse(tool_calls=[ToolCall(f"c{i}", name, args) for i, (name, args) in enumerate(calls)])


async def test_tool_call_loops_and_runaway_turns_are_recorded_off_rails(keys, ledger):
    config = make_config(oracle=["openai:a"])
    grep = ("grep", {"pattern": "cache"})
    model = FunctionModel(lambda request, m: tool_turn(grep), model_name="a")
    router = make_router(config, ledger, **{"openai:a": model})
    history = [Message.user("why?"), Message.assistant("", [ToolCall("x", *grep)]),
               Message.assistant("", [ToolCall("y", *grep)])]  # fmt: skip
    tools = [ToolDefinition("grep", "search", {"type": "object", "properties": {}})]
    looping = await router.request("oracle", ModelRequest(history, tools=tools))
    assert "tool_call_loop" in looping.warnings[0]
    fresh = await router.request("oracle", ModelRequest([Message.user("why?")], tools=tools))
    assert fresh.warnings == []
    runaway = await router.request("oracle", ModelRequest([Message.user("why?")], tools=tools, tools_allowed=False))
    assert "runaway_turns" in runaway.warnings[0]
    assert [(r["outcome"], r["detector"]) for r in ledger_rows(ledger)] == [
        ("off_rails", "tool_call_loop"), ("ok", None), ("off_rails", "runaway_turns")]  # fmt: skip


async def test_a_timed_out_attempt_keeps_its_reservation_and_an_answered_one_settles(keys, ledger, tmp_path):
    import sqlite3

    from cadre_core.budget import Budget

    config = make_config(oracle=[{"model": "openai:gpt-5.2", "timeout_s": 0.05}, "anthropic:claude-sonnet-4-5"])
    config.router.retries_per_candidate = 0
    config.budget.per_day_usd = 100.0
    fast = TestModel("fast", usage=Usage(input_tokens=10, output_tokens=5))
    router = make_router(
        config, ledger, **{"openai:gpt-5.2": TestModel(delay_s=5), "anthropic:claude-sonnet-4-5": fast}
    )
    router.budget = Budget(tmp_path / "budget.sqlite")
    request = ModelRequest([Message.user("x" * 3500)], max_output_tokens=1000)
    assert (await router.request("oracle", request)).text == "fast"
    amounts = [
        a for (a,) in sqlite3.connect(tmp_path / "budget.sqlite").execute("SELECT amount FROM spend ORDER BY id")
    ]
    # gpt-5.2 ($1.75/M in, $14/M out): (1000 x 1.5 + 1 input tokens, 1000 output) x 1.25, held since it may be billed
    worst = ((int((3500 / 3.5 + 8) * 1.5) + 1) * 1.75e-6 + 1000 * 14e-6) * 1.25
    assert amounts[0] == pytest.approx(worst)
    assert amounts[1] == pytest.approx(10 * 3e-6 + 5 * 15e-6)  # claude-sonnet-4-5 answered: its real cost


async def test_a_flagged_answer_survives_a_later_candidate_that_raises_and_never_leaks_into_the_next_request(
    keys, ledger
):
    config = make_config(oracle=["openai:a", "anthropic:b"])
    config.roles["oracle"].off_rails = "fallback"
    leaky = TestModel("<thinking>hmm</thinking> lock it", model_name="a")
    denied = failing(lambda: errors.AuthError("bad key", provider="anthropic", model="b"), "b")
    router = make_router(config, ledger, **{"openai:a": leaky, "anthropic:b": denied})
    routed = router.model("oracle")
    response = await routed.request(REQUEST)
    assert response.text.endswith("lock it") and "flagged answer is kept" in response.warnings[-1]
    leaky.text = "a fine answer"  # the same route, a new request: nothing from the last one
    assert (await routed.request(REQUEST)).text == "a fine answer"


async def test_a_new_call_after_a_repeated_one_is_not_a_loop(keys, ledger):
    config = make_config(oracle=["openai:a"])
    grep = ToolCall("x", "grep", {"pattern": "cache"})
    model = FunctionModel(lambda request, m: tool_turn(("read", {"path": "new.py"})), model_name="a")
    router = make_router(config, ledger, **{"openai:a": model})
    history = [Message.user("why?"), *[Message.assistant("", [grep])] * 3]
    tools = [ToolDefinition("read", "read", {"type": "object", "properties": {}})]
    assert (await router.request("oracle", ModelRequest(history, tools=tools))).warnings == []


async def test_a_provider_side_timeout_keeps_the_reservation_too(keys, ledger, tmp_path):
    import sqlite3

    from cadre_core.budget import Budget

    config = make_config(oracle=["openai:gpt-5.2"])
    config.router.retries_per_candidate = 0
    config.budget.per_day_usd = 100.0
    slow = failing(lambda: errors.ModelTimeoutError("504", provider="openai", model="gpt-5.2"), "gpt-5.2")
    router = make_router(config, ledger, **{"openai:gpt-5.2": slow})
    router.budget = Budget(tmp_path / "budget.sqlite")
    with pytest.raises(errors.AllCandidatesFailedError):
        await router.request("oracle", ModelRequest([Message.user("x" * 350)], max_output_tokens=100))
    (amount,) = sqlite3.connect(tmp_path / "budget.sqlite").execute("SELECT amount FROM spend").fetchone()
    assert amount > 0


async def test_the_repair_turn_retries_a_transient_error_like_any_attempt(keys, ledger):
    config = make_config(oracle=["openai:gpt-5.2"])
    replies = iter(["not json at all", errors.OverloadedError("HTTP 503: busy", provider="openai", model="gpt-5.2"),
                    '{"answer": "fixed"}'])  # fmt: skip

    def fn(request, model):
        reply = next(replies)
        if isinstance(reply, Exception):
            raise reply
        return ModelResponse(text=reply, usage=Usage(input_tokens=100, output_tokens=10))

    router = make_router(config, ledger, **{"openai:gpt-5.2": FunctionModel(fn, model_name="gpt-5.2")})
    request = ModelRequest([Message.user("q")], output_schema={"type": "object"}, validate=must_have_answer)
    assert (await router.request("oracle", request)).output == {"answer": "fixed"}
    assert [(r["outcome"], r["attempt"], r["error_class"]) for r in ledger_rows(ledger)] == [
        ("off_rails", 1, None), ("error", 2, "OverloadedError"), ("ok", 3, None)]  # fmt: skip


async def test_a_repair_turn_that_keeps_failing_names_the_real_cause(keys, ledger):
    config = make_config(oracle=["anthropic:claude-sonnet-4-5"])
    calls = []

    def fn(request, model):
        calls.append(request)
        if len(calls) == 1:
            return ModelResponse(text="not json", usage=Usage(input_tokens=100, output_tokens=10))
        raise errors.OverloadedError("HTTP 529: Overloaded", provider="anthropic", model="claude-sonnet-4-5")

    router = make_router(config, ledger, **{"anthropic:claude-sonnet-4-5": FunctionModel(fn)})
    request = ModelRequest([Message.user("q")], output_schema={"type": "object"}, validate=must_have_answer)
    with pytest.raises(errors.AllCandidatesFailedError) as info:
        await router.request("oracle", request)
    assert len(calls) == 1 + 3  # the answer, then the repair turn and its 2 retries
    assert "failed: the repair turn failed: HTTP 529: Overloaded (the first answer was invalid" in str(info.value)
    assert [r["outcome"] for r in ledger_rows(ledger)] == ["off_rails", "error", "error", "error"]


async def test_a_reply_that_arrives_after_its_time_out_is_discarded(keys, ledger):
    import time

    config = make_config(oracle=[{"model": "openai:gpt-5.2", "timeout_s": 0.05}, "anthropic:b"])
    config.router.retries_per_candidate = 0

    def blocking(request, model):  # holds the event loop, so the time-out cannot cancel it in time
        time.sleep(0.15)
        return ModelResponse(text="too late", usage=Usage(input_tokens=100, output_tokens=10))

    late = FunctionModel(blocking, model_name="gpt-5.2")
    router = make_router(config, ledger, **{"openai:gpt-5.2": late, "anthropic:b": TestModel("in time")})
    assert (await router.request("oracle", REQUEST)).text == "in time"
    first = ledger_rows(ledger)[0]
    assert (first["outcome"], first["error_class"], first["input_tokens"]) == ("fallback", "ModelTimeoutError", 100)
    assert first["cost_usd"] > 0  # the late reply was billed, so the ledger says so


async def test_sdk_imports_happen_off_the_event_loop_before_the_time_out_starts(keys, tmp_path, monkeypatch):
    import sys
    import time

    from cadre_core.models.base import ProviderModel

    (tmp_path / "slow_sdk_for_test.py").write_text("import time\ntime.sleep(0.4)\nREADY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_sdk_for_test", raising=False)

    class SlowSdkModel(ProviderModel):
        provider = "openai"
        sdk_modules = ("slow_sdk_for_test",)

        def make_client(self, api_key):
            return sys.modules["slow_sdk_for_test"]

        async def request(self, request):
            assert self.client.READY  # a half-imported module would not have it yet
            return ModelResponse(text="answered", usage=Usage(input_tokens=1, output_tokens=1))

    config = make_config(oracle=[{"model": "openai:a", "timeout_s": 0.1}])
    models = [SlowSdkModel("a", api_key="k") for _ in range(4)]
    gaps, answers, done = [], [], anyio.Event()

    async def ticker():
        last = time.perf_counter()
        while not done.is_set():
            await anyio.sleep(0.01)
            gaps.append(time.perf_counter() - last)
            last = time.perf_counter()

    async def call(model):  # four first calls at once, each with its own client
        router = make_router(config, **{"openai:a": model})
        answers.append((await router.request("oracle", REQUEST)).text)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        async with anyio.create_task_group() as calls:
            for model in models:
                calls.start_soon(call, model)
        done.set()
    assert answers == ["answered"] * 4
    assert max(gaps) < 0.3, "the import blocked the event loop"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "google"])
def test_each_sdk_accepts_its_warm_up_reply(provider):
    """`prepare` hides warm-up failures, so check here that each canned reply still parses."""
    from cadre_core.config import ProviderConfig
    from cadre_core.models import build_model
    from cadre_core.models.base import _warm_up

    _warm_up(build_model(f"{provider}:m", ProviderConfig(key_required=False)))
