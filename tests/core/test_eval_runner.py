"""The eval runner through the real oracle and search servers, with scripted models and hand-computed numbers."""

import json
import sqlite3
import textwrap

import anyio
import pytest

from cadre_app.evals import EvalError
from cadre_app.evals.roles import RoleTarget, targets
from cadre_app.evals.runner import _require_tool, run_eval
from cadre_app.evals.stats import wilson
from cadre_app.evals.suite import builtin_suite, load_suite
from cadre_core.config import RoleConfig
from cadre_core.ledger import SQLLedgerStore
from cadre_core.models.base import ModelResponse, ToolCall, Usage
from cadre_core.models.test import FunctionModel
from tests.core.conftest import make_config

pytestmark = pytest.mark.anyio
GPT, HAIKU = "openai:gpt-5.2", "anthropic:claude-haiku-4-5"  # $1.75/$14 and $1/$5 per million tokens

SUITE = """
name = "small"
role = "oracle"

[[tasks]]
id = "lock"
prompt = "Is Store thread-safe?"
files = { "app/store.py" = "class Store:\\n    def put(self, k, v):\\n        self.d[k] = v\\n" }
check = { type = "contains", value = "lock" }

[[tasks]]
id = "json"
prompt = "Which file holds Store?"
files = { "app/store.py" = "class Store:\\n    pass\\n" }
check = { type = "regex", pattern = "(?i)use a lock" }

[[tasks]]
id = "cache"
prompt = "How do we make reads faster?"
check = { type = "contains", value = "cache" }
"""


def answer(text, usage=None):
    body = {"answer": text, "key_points": ["k"], "risks": ["r"], "next_steps": ["n"], "confidence": "high",
            "citations": []}  # fmt: skip
    return ModelResponse(text=json.dumps(body), usage=usage or Usage(input_tokens=1000, output_tokens=200))


def gpt_reply(request, model):
    return answer("Use a lock, and a cache for reads.")


def haiku_reply(request, model):
    """Right about locks, never mentions a cache; its first try at the 'json' task is not JSON."""
    asked = request.messages[0].text
    if "Which file holds Store?" in asked and "That answer is invalid" not in request.messages[-1].text:
        return ModelResponse(text="Store is in app/store.py", usage=Usage(input_tokens=1000, output_tokens=0))
    return answer("Use a lock.")


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    return load_suite(path)


def factory(models):
    return lambda cand, cfg: models[cand.model]


async def test_oracle_eval_scores_costs_and_off_rails_match_hand_computed_values(suite, tmp_path, keys):
    models = {GPT: FunctionModel(gpt_reply), HAIKU: FunctionModel(haiku_reply)}
    ledger = tmp_path / "run.sqlite"
    done = []
    report = await run_eval("oracle", [GPT, HAIKU], suite, config=make_config(oracle=[HAIKU]), ledger_path=ledger,
                            repeat=2, model_factory=factory(models), on_result=done.append)  # fmt: skip
    gpt, haiku = report.models
    # gpt: 6 runs, each 1000 in x $1.75/M + 200 out x $14/M = $0.00455, never off the rails
    assert (gpt.model, gpt.runs, gpt.passed, gpt.score) == (GPT, 6, 6, 1.0)
    assert (gpt.ci_low, gpt.ci_high) == (pytest.approx(0.6097, abs=5e-4), 1.0)
    assert gpt.avg_cost_usd == pytest.approx(0.00455) and gpt.off_rails_pct == 0.0
    # haiku: fails 'cache' twice -> 4/6; six answers at 1000 x $1/M + 200 x $5/M = $0.002 plus two
    # non-JSON first tries at 1000 x $1/M = $0.001, recorded off_rails: $0.014 in all, $0.002 of it off the rails
    assert (haiku.passed, haiku.runs, haiku.errors) == (4, 6, 0)
    assert (haiku.ci_low, haiku.ci_high) == (pytest.approx(0.3000, abs=5e-4), pytest.approx(0.9032, abs=5e-4))
    assert haiku.total_cost_usd == pytest.approx(0.014)
    assert haiku.avg_cost_usd == pytest.approx(0.014 / 6)
    assert haiku.off_rails_cost_usd == pytest.approx(0.002)
    assert haiku.off_rails_pct == pytest.approx(100 * 0.002 / 0.014)
    assert haiku.off_rails_attempts == 2
    assert gpt.p50_latency_s > 0 and gpt.p95_latency_s >= gpt.p50_latency_s
    # every run is reported, and the per-run numbers add up to the ledger's
    assert len(report.results) == len(done) == 12
    failed = [(r.model, r.task, r.repeat) for r in report.results if not r.passed]
    assert failed == [(HAIKU, "cache", 1), (HAIKU, "cache", 2)]
    assert next(r for r in report.results if not r.passed).reason == "missing 'cache': 'Use a lock.'"
    json_runs = [r for r in report.results if r.model == HAIKU and r.task == "json"]
    assert [r.cost_usd for r in json_runs] == [pytest.approx(0.003)] * 2
    assert [r.off_rails_cost_usd for r in json_runs] == [pytest.approx(0.001)] * 2
    # the dedicated ledger holds exactly this run's attempts
    store = SQLLedgerStore(ledger)
    rows = store.rows(limit=1000)
    store.close()
    assert len(rows) == 6 + 8
    assert {r["tool"] for r in rows} == {"consult_oracle"}
    assert sum(r["cost_usd"] for r in rows if r["provider"] == "anthropic") == pytest.approx(0.014)
    # the task's files were written into its workspace and packed for the model
    sent = [r.messages[0].text for r in models[GPT].requests]
    assert any("app/store.py" in text and "class Store:" in text for text in sent)
    assert report.as_dict()["models"][1]["off_rails_pct"] == pytest.approx(14.2857, abs=1e-3)


async def test_runs_go_in_parallel_up_to_the_concurrency_limit(suite, tmp_path, keys):
    running, peak = 0, 0

    async def slow(request, model):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.05)
        running -= 1
        return answer("Use a lock and a cache.")

    models = {GPT: FunctionModel(slow), HAIKU: FunctionModel(slow)}
    report = await run_eval("oracle", [GPT, HAIKU], suite, config=make_config(), ledger_path=tmp_path / "l.sqlite",
                            concurrency=2, model_factory=factory(models))  # fmt: skip
    assert peak == 2
    assert [(m.model, m.score) for m in report.models] == [(GPT, 1.0), (HAIKU, 1.0)]
    assert all(m.p50_latency_s >= 0.05 for m in report.models)


async def test_tool_errors_count_as_failed_runs(suite, tmp_path, keys):
    from cadre_core.errors import AuthError

    def broken(request, model):
        raise AuthError("key revoked", provider="openai", model="gpt-5.2", env_var="OPENAI_API_KEY")

    report = await run_eval("oracle", [GPT], suite, config=make_config(), ledger_path=tmp_path / "l.sqlite",
                            model_factory=factory({GPT: FunctionModel(broken)}))  # fmt: skip
    (stats,) = report.models
    assert (stats.passed, stats.errors, stats.score) == (0, 3, 0.0)
    assert report.results[0].reason.startswith("tool error: ") and "authentication failed" in report.results[0].reason


async def test_search_deep_mode_through_the_real_server_with_the_starter_suite(tmp_path, keys, monkeypatch):
    monkeypatch.setenv("CADRE_SEARCH_INDEX_DIR", str(tmp_path / "index"))
    suite = load_suite(builtin_suite("search"))
    gold = {t.prompt: t.check[0].pattern.replace("\\", "") for t in suite.tasks}
    flash, luna = "google:gemini-2.5-flash", "openai:gpt-5-mini"  # $0.30/$2.50 and $0.25/$2 per million

    def explorer(request, model):
        """Searches once, then answers citing the gold file."""
        question = request.messages[0].text.split("Question:\n", 1)[1].split("\n\nFirst-pass results:")[0]
        if len(request.messages) == 1:
            call = ToolCall("c1", "search", {"query": question[:40]})
            return ModelResponse(tool_calls=[call], finish_reason="tool_use", usage=Usage(input_tokens=1000))
        assert request.messages[-1].role == "tool" and request.messages[-1].text.startswith("[")
        return ModelResponse(text=f"It is in {gold[question]}:1.", usage=Usage(input_tokens=1000, output_tokens=100))

    def guesser(request, model):
        return ModelResponse(text="Probably in utils.py.", usage=Usage(input_tokens=2000, output_tokens=100))

    models = {flash: FunctionModel(explorer), luna: FunctionModel(guesser)}
    report = await run_eval("search", [flash, luna], suite, config=make_config(), ledger_path=tmp_path / "l.sqlite",
                            model_factory=factory(models))  # fmt: skip
    good, bad = report.models
    n = len(suite.tasks)
    assert (good.passed, good.runs) == (n, n) and (bad.passed, bad.runs) == (0, n)
    # flash: 2000 in x $0.30/M + 100 out x $2.50/M = $0.00085 a task; luna: 2000 x $0.25/M + 100 x $2/M = $0.0007
    assert good.avg_cost_usd == pytest.approx(0.00085)
    assert bad.avg_cost_usd == pytest.approx(0.0007)
    assert len(models[flash].requests) == 2 * n and len(models[luna].requests) == n
    assert {r.answer for r in report.results if r.model == luna} == {"Probably in utils.py."}


def test_the_starter_search_suite_has_gold_files_among_distractors(tmp_path):
    """Each task's expected file is in its repository, next to look-alike files, and gets indexed."""
    from cadre_app.evals.runner import write_workspace
    from cadre_search.engine import Engine

    tasks = load_suite(builtin_suite("search")).tasks
    assert len(tasks) >= 5  # an emptied starter suite must not pass
    for task in tasks:
        gold = task.check[0].pattern.replace("\\", "")
        assert gold in task.files and len(task.files) >= 3, task.id
        engine = Engine(write_workspace(tmp_path, task), index_path=tmp_path / f"{task.id}.sqlite")
        try:
            assert engine.search(task.prompt).index["files"] == len(task.files)
        finally:
            engine.index.close()


async def test_bad_models_and_missing_keys_stop_before_any_call(suite, tmp_path, keys, monkeypatch):
    config = make_config()
    with pytest.raises(EvalError, match="listed twice"):
        await run_eval("oracle", [GPT, GPT], suite, config=config, ledger_path=tmp_path / "a.sqlite")
    with pytest.raises(EvalError, match="gemini:gemini-2.5-flash and google:gemini-2.5-flash are both google:gem"):
        await run_eval("oracle", ["gemini:gemini-2.5-flash", "google:gemini-2.5-flash"], suite, config=config,
                       ledger_path=tmp_path / "a.sqlite")  # fmt: skip
    with pytest.raises(EvalError, match="'gpt-5' is not a model reference"):
        await run_eval("oracle", ["gpt-5"], suite, config=config, ledger_path=tmp_path / "a.sqlite")
    with pytest.raises(EvalError, match="host's model cannot be evaluated"):
        await run_eval("oracle", ["sampling:host"], suite, config=config, ledger_path=tmp_path / "a.sqlite")
    with pytest.raises(EvalError, match="suite .* is for role 'oracle', not 'search'"):
        await run_eval("search", [GPT], suite, config=config, ledger_path=tmp_path / "a.sqlite")
    with pytest.raises(EvalError, match="unknown role 'poet'"):
        await run_eval("poet", [GPT], suite, config=config, ledger_path=tmp_path / "a.sqlite")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(EvalError, match="cannot call anthropic:claude-haiku-4-5: no API key; set ANTHROPIC_API_KEY"):
        await run_eval("oracle", [GPT, HAIKU], suite, config=config, ledger_path=tmp_path / "a.sqlite")
    judged = tmp_path / "j.toml"
    judge = '{ type = "judge", model = "anthropic:claude-haiku-4-5", criteria = "c" }'
    judged.write_text(f'[[tasks]]\nid = "a"\nprompt = "p"\ncheck = {judge}\n')
    with pytest.raises(EvalError, match="cannot call anthropic:claude-haiku-4-5"):
        await run_eval("oracle", [GPT], load_suite(judged), config=config, ledger_path=tmp_path / "a.sqlite")
    (tmp_path / "used.sqlite").write_text("")
    with pytest.raises(EvalError, match="already exists; each eval run needs a new ledger file"):
        await run_eval("oracle", [GPT], suite, config=config, ledger_path=tmp_path / "used.sqlite")
    assert not (tmp_path / "a.sqlite").exists()


def test_a_models_settings_are_found_under_any_provider_alias():
    from cadre_app.evals.runner import candidate_for

    config = make_config(oracle=[{"model": "google:gemini-2.5-flash", "effort": "high"}])
    assert candidate_for(config, "oracle", "gemini:gemini-2.5-flash").effort == "high"
    assert candidate_for(config, "oracle", "openai:gpt-5.2").effort is None


async def test_a_server_without_the_roles_tool_says_so(tmp_path):
    missing = RoleTarget("librarian", "cadre-librarian", "cadre_oracle.server", "research", lambda t: {}, str)
    with pytest.raises(EvalError) as err:
        await _require_tool(missing, tmp_path)
    assert "has no 'research' tool in this install" in str(err.value)
    assert "update cadre-librarian" in str(err.value)
    assert targets()["librarian"].tool == "research" and targets()["review"].tool == "review_change"


async def test_judge_rows_are_not_counted_as_the_candidates_spend(tmp_path, keys):
    path = tmp_path / "judged.toml"
    path.write_text(
        textwrap.dedent("""
        [[tasks]]
        id = "a"
        prompt = "Is Store thread-safe?"
        check = { type = "judge", model = "openai:gpt-5.2", criteria = "Recommends a lock." }
    """)
    )

    def judge(request, model):
        ok = "lock" in request.messages[0].text.split("The assistant's answer:")[1]
        return ModelResponse(text=json.dumps({"pass": ok, "reason": "r"}), usage=Usage(input_tokens=500))

    def both(request, model):
        return judge(request, model) if request.schema_name == "verdict" else gpt_reply(request, model)

    ledger = tmp_path / "l.sqlite"
    report = await run_eval("oracle", [GPT], load_suite(path), config=make_config(), ledger_path=ledger,
                            repeat=3, model_factory=factory({GPT: FunctionModel(both)}))  # fmt: skip
    (stats,) = report.models
    assert stats.passed == 3
    assert stats.total_cost_usd == pytest.approx(3 * 0.00455)  # the judge's 3 x $0.000875 is left out
    store = SQLLedgerStore(ledger)
    tools = sorted(r["tool"] for r in store.rows())
    store.close()
    assert tools == ["consult_oracle"] * 3 + ["eval_judge"] * 3


async def test_librarian_research_through_the_real_server(tmp_path, keys):
    """`research` with `libraries` (an installed package, so no network): the answer is checked."""
    path = tmp_path / "lib.toml"
    path.write_text(
        textwrap.dedent("""
        [[tasks]]
        id = "pydantic-validate"
        prompt = "In pydantic v2, how do I validate a dict into a model?"
        args = { libraries = ["pydantic"] }
        check = { type = "contains", value = "model_validate" }
    """)
    )

    def librarian(request, model):
        body = {"answer": "Call Model.model_validate(data).", "citations": []}
        return ModelResponse(text=json.dumps(body), usage=Usage(input_tokens=1000, output_tokens=100))

    models = factory({HAIKU: FunctionModel(librarian)})
    report = await run_eval("librarian", [HAIKU], load_suite(path), config=make_config(),
                            ledger_path=tmp_path / "l.sqlite", model_factory=models)  # fmt: skip
    (stats,) = report.models
    assert (stats.passed, stats.errors) == (1, 0), report.results[0].reason
    assert stats.total_cost_usd == pytest.approx(1000 * 1e-6 + 100 * 5e-6)


async def test_review_role_goes_through_review_change(tmp_path, keys):
    path = tmp_path / "review.toml"
    path.write_text(
        textwrap.dedent("""
        [[tasks]]
        id = "sqli"
        prompt = '''
        --- a/users.py
        +++ b/users.py
        @@ -1,2 +1,2 @@
        -    cur = conn.execute("SELECT * FROM users WHERE email = ?", (email,))
        +    cur = conn.execute(f"SELECT * FROM users WHERE email = '{email}'")
        '''
        check = [
          { type = "regex", pattern = "(?i)injection" },
          { type = "exact", value = "major", on = "findings.0.severity" },
        ]
    """)
    )

    def reviewer(request, model):
        assert "SELECT * FROM users" in request.messages[0].text
        finding = {"severity": "major", "path": "users.py", "line": 2, "title": "SQL injection",
                   "explanation": "email is interpolated", "suggestion": "use a placeholder"}  # fmt: skip
        body = {"summary": "Reintroduces SQL injection.", "findings": [finding]}
        return ModelResponse(text=json.dumps(body), usage=Usage(input_tokens=1000, output_tokens=200))

    models = factory({GPT: FunctionModel(reviewer)})
    report = await run_eval("review", [GPT], load_suite(path), config=make_config(review=[HAIKU]),
                            ledger_path=tmp_path / "l.sqlite", model_factory=models)  # fmt: skip
    assert report.models[0].passed == 1, report.results[0].reason
    assert report.results[0].answer.startswith("Reintroduces SQL injection.\nmajor users.py:2 SQL injection")


async def test_a_run_over_the_timeout_fails_and_the_rest_go_on(suite, tmp_path, keys):
    async def stuck(request, model):
        if "faster" in request.messages[0].text:
            await anyio.sleep(30)
        return answer("Use a lock and a cache.")

    report = await run_eval("oracle", [GPT], suite, config=make_config(), ledger_path=tmp_path / "l.sqlite",
                            timeout_s=0.5, model_factory=factory({GPT: FunctionModel(stuck)}))  # fmt: skip
    assert [(r.task, r.passed) for r in report.results] == [("lock", True), ("json", True), ("cache", False)]
    assert report.results[2].reason == "tool error: no result within 0.5s (--timeout)"
    assert report.models[0].errors == 1 and report.results[2].latency_s < 5  # cut off, not left to run 30 s


async def test_a_failing_judge_leaves_runs_ungraded_and_spends_its_own_role_budget(tmp_path, keys, capsys):
    """A judge that cannot grade (bad output here) is not the candidate's failure: the run is left out of the
    score and CI, counted per model and explained in a note; the judge's spend is not the oracle's."""
    path = tmp_path / "judged.toml"
    judge = '{ type = "judge", model = "openai:gpt-5.2", criteria = "Recommends a lock." }'
    path.write_text(f'[[tasks]]\nid = "a"\nprompt = "Is Store thread-safe?"\ncheck = {judge}\n\n'
                    f'[[tasks]]\nid = "b"\nprompt = "Is Cache thread-safe?"\ncheck = {judge}\n')  # fmt: skip

    def both(request, model):
        if request.schema_name != "verdict":
            return gpt_reply(request, model)
        if "Is Cache thread-safe?" in request.messages[0].text:  # the judge never answers in JSON here
            return ModelResponse(text="It is fine I guess", usage=Usage(input_tokens=500))
        return ModelResponse(text=json.dumps({"pass": True, "reason": "r"}), usage=Usage(input_tokens=500))

    config = make_config()
    config.roles["oracle"] = RoleConfig(budget_per_day_usd=50.0)
    config.budget.per_day_usd = 100.0
    config.paths.budget = tmp_path / "budget.sqlite"
    report = await run_eval("oracle", [GPT], load_suite(path), config=config, ledger_path=tmp_path / "l.sqlite",
                            repeat=2, model_factory=factory({GPT: FunctionModel(both)}))  # fmt: skip
    (stats,) = report.models
    assert (stats.passed, stats.runs, stats.ungraded, stats.score) == (2, 2, 2, 1.0)
    assert (stats.ci_low, stats.ci_high) == wilson(2, 2)
    assert stats.avg_cost_usd == pytest.approx(0.00455)  # the candidate's spend over all 4 runs
    assert [(r.task, r.passed, r.ungraded) for r in report.results] == [
        ("a", True, False), ("a", True, False), ("b", False, True), ("b", False, True)]  # fmt: skip
    assert report.results[2].reason.startswith("judge openai:gpt-5.2 failed: ")
    (note,) = report.notes
    assert note.startswith(f"{GPT}: 2 run(s) ungraded and left out of its score and CI, because the judge")
    assert report.as_dict()["models"][0]["ungraded"] == 2 and report.as_dict()["notes"] == [note]
    from cadre_app.cli.eval import print_table

    print_table(report)
    printed = capsys.readouterr().out
    assert "100% (2/2, 2 ungraded)" in printed and f"note: {note}" in " ".join(printed.split())
    with sqlite3.connect(tmp_path / "budget.sqlite") as conn:
        spent = dict(conn.execute("SELECT role, SUM(amount) FROM spend GROUP BY role").fetchall())
    assert spent["oracle"] == pytest.approx(4 * 0.00455)  # the judge's calls are not charged to the oracle
    assert spent["judge"] == pytest.approx(2 * 0.000875 + 2 * 2 * 0.000875)  # 2 graded + 2 x (try + repair)
