"""Eval checkers (each type, passing and failing), the LLM judge through the router, and the stats."""

import json
import textwrap

import pytest

from cadre_app.evals.checkers import Output, Verdict, check, target
from cadre_app.evals.judge import JUDGE_TOOL, Judge
from cadre_app.evals.stats import percentile, wilson
from cadre_app.evals.suite import Task, load_suite
from cadre_core.models.base import ModelResponse, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.router import Router
from tests.core.conftest import ledger_rows, make_config

pytestmark = pytest.mark.anyio


def mentions_lock(output):
    """Importable checker used as `tests.core.test_eval_checkers:mentions_lock`."""
    return ("lock" in output.text, f"looked at {len(output.text)} chars")


def task(*checks, prompt="Is Store thread-safe?"):
    return Task.model_validate({"id": "t", "prompt": prompt, "check": list(checks)})


def output(t, text="Use a lock around put.", result=None):
    return Output(t, text, result if result is not None else {"answer": text}, None, "openai:gpt-5.2")


@pytest.mark.parametrize(
    ("spec", "passed", "reason"),
    [
        ({"type": "exact", "value": " Use a lock around put. "}, True, "exact match"),
        ({"type": "exact", "value": "use a lock around put.", "ignore_case": True}, True, "exact match"),
        ({"type": "exact", "value": "use a lock around put."}, False, "expected exactly 'use a lock around put.'"),
        ({"type": "regex", "pattern": r"\block\b"}, True, "/\\block\\b/ matched 'lock'"),
        ({"type": "regex", "pattern": "mutex"}, False, "/mutex/ not found: 'Use a lock around put.'"),
        ({"type": "regex", "pattern": "USE", "ignore_case": True}, True, "matched 'Use'"),
        ({"type": "contains", "value": ["lock", "put"]}, True, "contains 'lock', 'put'"),
        ({"type": "contains", "value": ["lock", "mutex", "race"]}, False, "missing 'mutex', 'race'"),
        ({"type": "contains", "value": "LOCK", "ignore_case": True}, True, "contains 'LOCK'"),
        ({"type": "contains", "value": "app/store.py", "on": "citations.*.path"}, True, "in citations.*.path"),
        ({"type": "contains", "value": "app/other.py", "on": "citations.*.path"}, False, "missing 'app/other.py'"),
        ({"type": "exact", "value": "3", "on": "citations.0.start_line"}, True, "exact match in citations.0"),
        ({"type": "exact", "value": "x", "on": "nothing.here"}, False, "the result has no 'nothing.here'"),
    ],
)
async def test_text_checkers(spec, passed, reason):
    t = task(spec)
    result = {"answer": "Use a lock around put.", "citations": [{"path": "app/store.py", "start_line": 3}]}
    verdict = await check(output(t, result=result))
    assert verdict.passed is passed
    assert reason in verdict.reason


async def test_json_schema_checker_on_the_result_and_on_json_text():
    schema = {"type": "object", "required": ["answer", "confidence"],
              "properties": {"confidence": {"enum": ["low", "medium", "high"]}}}  # fmt: skip
    t = task({"type": "json_schema", "schema": schema})
    assert (await check(output(t, result={"answer": "a", "confidence": "high"}))).passed
    bad = await check(output(t, result={"answer": "a", "confidence": "sure"}))
    assert not bad.passed and bad.reason.startswith("JSON schema: at confidence: 'sure' is not one of")
    on_text = task({"type": "json_schema", "schema": {"type": "array", "minItems": 2}, "on": "answer"})
    assert (await check(output(on_text, text="[1, 2]", result={"answer": "```json\n[1, 2]\n```"}))).passed
    short = await check(output(on_text, result={"answer": "[1]"}))
    assert not short.passed and "is too short" in short.reason
    prose = await check(output(on_text, result={"answer": "no json here"}))
    assert not prose.passed and prose.reason.startswith("not JSON")


async def test_python_checkers_by_module_and_by_file(tmp_path):
    (tmp_path / "checks.py").write_text(
        textwrap.dedent("""
        def cites_store(output):
            return any(c["path"] == "app/store.py" for c in output.result.get("citations", []))

        def explodes(output):
            raise RuntimeError("bad checker")
    """)
    )
    (tmp_path / "s.toml").write_text(
        textwrap.dedent("""
        [[tasks]]
        id = "by-module"
        prompt = "p"
        check = { type = "python", function = "tests.core.test_eval_checkers:mentions_lock" }

        [[tasks]]
        id = "by-file"
        prompt = "p"
        check = { type = "python", function = "checks.py:cites_store" }

        [[tasks]]
        id = "raises"
        prompt = "p"
        check = { type = "python", function = "checks.py:explodes" }
    """)
    )
    by_module, by_file, raises = load_suite(tmp_path / "s.toml").tasks
    good = await check(output(by_module, text="take the lock"))
    assert good == Verdict(True, "looked at 13 chars")
    assert not (await check(output(by_module, text="no"))).passed
    assert (await check(output(by_file, result={"citations": [{"path": "app/store.py"}]}))).passed
    missed = await check(output(by_file, result={"citations": [{"path": "app/x.py"}]}))
    assert missed == Verdict(False, "checks.py:cites_store returned False")
    boom = await check(output(raises))
    assert boom == Verdict(False, "checks.py:explodes raised RuntimeError: bad checker")


async def test_async_python_checkers_are_awaited(tmp_path):
    """`async def` checkers: the awaited result is the verdict, not the (always truthy) coroutine."""
    (tmp_path / "achecks.py").write_text(
        textwrap.dedent("""
        async def never(output):
            return False

        async def says_lock(output):
            return ("lock" in output.text, "async looked")

        async def explodes(output):
            raise ValueError("async boom")
    """)
    )
    rows = "".join(
        f'[[tasks]]\nid = "{name}"\nprompt = "p"\ncheck = {{ type = "python", function = "achecks.py:{name}" }}\n'
        for name in ("never", "says_lock", "explodes")
    )
    (tmp_path / "s.toml").write_text(rows)
    never, says_lock, explodes = load_suite(tmp_path / "s.toml").tasks
    assert await check(output(never)) == Verdict(False, "achecks.py:never returned False")
    assert await check(output(says_lock)) == Verdict(True, "async looked")
    assert not (await check(output(says_lock, text="no"))).passed
    assert await check(output(explodes)) == Verdict(False, "achecks.py:explodes raised ValueError: async boom")


async def test_all_checks_must_pass_and_a_tool_error_fails_without_checking():
    t = task({"type": "contains", "value": "lock"}, {"type": "regex", "pattern": "mutex"})
    verdict = await check(output(t))
    assert verdict == Verdict(False, "/mutex/ not found: 'Use a lock around put.'")
    failed = Output(t, "", None, "openai:gpt-5.2: authentication failed", "openai:gpt-5.2")
    assert await check(failed) == Verdict(False, "tool error: openai:gpt-5.2: authentication failed")


def test_target_paths():
    t = task({"type": "exact", "value": "x"})
    out = output(t, result={"answer": "a", "hits": [{"path": "a.py"}, {"path": "b.py"}], "n": 2})
    assert target(out, "hits.*.path") == ["a.py", "b.py"]
    assert target(out, "hits.1.path") == "b.py"
    assert target(out, "result")["n"] == 2
    assert target(out, None) == "Use a lock around put."


async def test_judge_grades_through_the_router_and_records_its_rows(tmp_path, keys, ledger):
    seen = []

    def judge_reply(request, model):
        seen.append(request)
        text = request.messages[0].text
        verdict = {"pass": "lock" in text.split("The assistant's answer:")[1], "reason": "checked for a lock"}
        if len(seen) == 1:
            return ModelResponse(text="I think it passes", usage=Usage(input_tokens=100, output_tokens=10))
        return ModelResponse(text=json.dumps(verdict), usage=Usage(input_tokens=100, output_tokens=10))

    judge_model = FunctionModel(judge_reply)
    router = Router(make_config(), ledger, model_factory=lambda cand, cfg: judge_model)
    judge = Judge(router)
    spec = {"type": "judge", "model": "openai:gpt-5.2", "criteria": "Recommends a lock.", "reference": "Lock put()."}
    t = task(spec)
    good = await check(output(t), judge)
    bad = await check(output(t, text="Looks fine."), judge)
    assert good == Verdict(True, "judge openai:gpt-5.2: checked for a lock")
    assert bad == Verdict(False, "judge openai:gpt-5.2: checked for a lock")
    first = seen[0]
    assert first.output_schema["required"] == ["pass", "reason"]
    assert "Recommends a lock." in first.messages[0].text and "Reference answer:\nLock put()." in first.messages[0].text
    assert "Is Store thread-safe?" in first.messages[0].text
    rows = ledger_rows(ledger)
    assert [r["outcome"] for r in rows] == ["off_rails", "ok", "ok"]  # the prose verdict was repaired
    assert {r["tool"] for r in rows} == {JUDGE_TOOL} and {r["server"] for r in rows} == {"cadre-eval"}
    assert rows[0]["detector"] == "invalid_structured_output"


async def test_a_failing_judge_fails_the_task_with_the_reason(keys, ledger):
    from cadre_core.errors import AuthError

    def broken(request, model):
        raise AuthError("bad key", provider="openai", model="gpt-5.2", env_var="OPENAI_API_KEY")

    router = Router(make_config(), ledger, model_factory=lambda cand, cfg: FunctionModel(broken))
    t = task({"type": "judge", "model": "openai:gpt-5.2", "criteria": "c"})
    verdict = await check(output(t), Judge(router))
    assert not verdict.passed and verdict.ungraded  # not the evaluated model's failure
    assert verdict.reason.startswith("judge openai:gpt-5.2 failed: openai:gpt-5.2: authentication failed")
    assert {r["role"] for r in ledger_rows(ledger)} == {"judge"}
    # another checker that fails still fails the run: the answer is wrong whatever the judge says
    both = task({"type": "judge", "model": "openai:gpt-5.2", "criteria": "c"}, {"type": "contains", "value": "mutex"})
    failed = await check(output(both), Judge(router))
    assert not failed.passed and not failed.ungraded and failed.reason.startswith("missing 'mutex'")
    assert (await check(output(t))).ungraded  # no judge at all: ungraded too


def test_wilson_interval_matches_hand_computed_values():
    # p = 4/6, z = 1.96: center = (p + z²/2n) / (1 + z²/n) = 0.6016, half-width 0.3016
    assert wilson(4, 6) == (pytest.approx(0.3000, abs=5e-4), pytest.approx(0.9032, abs=5e-4))
    assert wilson(6, 6) == (pytest.approx(0.6097, abs=5e-4), 1.0)  # n / (n + z²) = 6 / 9.8415
    assert wilson(0, 6) == (0.0, pytest.approx(0.3903, abs=5e-4))
    assert wilson(5, 10) == (pytest.approx(0.2366, abs=5e-4), pytest.approx(0.7634, abs=5e-4))
    assert wilson(0, 0) == (0.0, 1.0)


def test_percentiles_interpolate_between_ranks():
    values = [0.4, 0.1, 0.3, 0.2]
    assert percentile(values, 50) == pytest.approx(0.25)
    assert percentile(values, 95) == pytest.approx(0.2 + 0.185)  # rank 2.85 between 0.3 and 0.4
    assert percentile([0.7], 95) == 0.7 and percentile([], 50) is None
