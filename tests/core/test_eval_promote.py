"""`cadre eval` end to end (scripted models) and `--promote`: the route changes only when the winner earns it."""

import json
import textwrap

import pytest

from cadre_app.cli import main
from cadre_app.evals.promote import decide, write_route
from cadre_app.evals.runner import EvalReport
from cadre_app.evals.stats import ModelStats
from cadre_core.config import Candidate
from cadre_core.models.base import ModelResponse, Usage
from cadre_core.models.test import FunctionModel
from tests.core.test_eval_runner import GPT, HAIKU, SUITE, answer, gpt_reply, haiku_reply

PROJECT = """\
# team routing, reviewed in January
[roles.oracle]
# cheap first while we evaluate
candidates = [
  { model = "anthropic:claude-haiku-4-5", max_output_tokens = 4000 },  # the incumbent
  { model = "openai:gpt-5.2", effort = "high" },
]
off_rails = "warn"

[router]
cooldown_s = 5
"""


def stats(model, score, off=0.0, cost=0.01, flagged=0):
    """10 runs, 20 answered attempts of which `flagged` were off the rails; `off=None`: no priced spend."""
    return ModelStats(model, 10, round(score * 10), 0, score, 0.0, 1.0, cost * 10, cost, 0.0, off, flagged, 0, 1.0,
                      2.0, answered_attempts=20, flagged_pct=100 * flagged / 20)  # fmt: skip


def report(*models):
    return EvalReport("oracle", "s", "s.toml", 10, 1, "l.sqlite", list(models))


@pytest.mark.parametrize(
    ("models", "incumbent", "promoted", "reason"),
    [
        ((stats("a:x", 0.6), stats("b:y", 0.7)), "a:x", True, "b:y scores 0.70 vs 0.60 for a:x (+0.10 >= margin"),
        ((stats("a:x", 0.6), stats("b:y", 0.64)), "a:x", False, "+0.04 is below the margin 0.05"),
        ((stats("a:x", 0.6), stats("b:y", 0.65)), "a:x", True, "(+0.05 >= margin 0.05)"),
        ((stats("a:x", 0.6, off=2.0), stats("b:y", 0.9, off=2.5)), "a:x", False, "goes off the rails more"),
        ((stats("a:x", 0.6, off=2.0), stats("b:y", 0.9, off=2.0)), "a:x", True, "off-the-rails spend 2.0% vs 2.0%"),
        ((stats("a:x", 0.9), stats("b:y", 0.7)), "a:x", False, "the incumbent a:x (0.90) is already the best"),
        ((stats("b:y", 0.9), stats("c:z", 0.7)), "a:x", False, "the incumbent a:x was not evaluated; add it to"),
        ((stats("b:y", 0.9),), None, False, "has no route yet"),
    ],
)
def test_decide(models, incumbent, promoted, reason):
    decision = decide(report(*models), incumbent, 0.05)
    assert decision.promoted is promoted
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("models", "promoted", "reason"),
    [
        # an unpriced model has no spend share: both are compared on flagged attempts by count
        (
            (stats("a:x", 0.6, off=0.0, flagged=1), stats("b:y", 0.9, off=None, flagged=4)),
            False,
            "goes off the rails more (flagged attempts 20.0% vs 5.0% (compared by count: b:y had no priced spend",
        ),
        (
            (stats("a:x", 0.6, off=None, flagged=4), stats("b:y", 0.9, off=None, flagged=4)),
            True,
            "flagged attempts 20.0% vs 20.0% (compared by count: b:y and a:x had no priced spend",
        ),
        (
            (stats("a:x", 0.6, off=None, flagged=3), stats("b:y", 0.9, off=5.0, flagged=1)),
            True,
            "flagged attempts 5.0% vs 15.0% (compared by count: a:x had no priced spend",
        ),
    ],
)
def test_unpriced_models_are_compared_on_flagged_attempts(models, promoted, reason):
    decision = decide(report(*models), "a:x", 0.05)
    assert decision.promoted is promoted
    assert reason in decision.reason


def test_unpriced_stats_say_n_a_not_zero(capsys):
    from cadre_app.cli.eval import print_table
    from cadre_app.evals.stats import summarize

    class Run:
        passed, ungraded, error, latency_s = True, False, None, 1.0

    rows = [{"cost_usd": None, "outcome": "ok"}, {"cost_usd": None, "outcome": "off_rails"},
            {"cost_usd": None, "outcome": "error"}, {"cost_usd": None, "outcome": "ok"}]  # fmt: skip
    free = summarize("openai_compatible:local", [Run(), Run()], rows)
    assert free.off_rails_pct is None and free.total_cost_usd == 0.0
    assert (free.off_rails_attempts, free.answered_attempts, free.flagged_pct) == (1, 3, pytest.approx(100 / 3))
    priced = summarize(
        "a:x", [Run()], [{"cost_usd": 0.02, "outcome": "ok"}, {"cost_usd": 0.01, "outcome": "off_rails"}]
    )
    assert priced.off_rails_pct == pytest.approx(100 / 3) and priced.flagged_pct == 50.0
    print_table(report(free, priced))
    line = next(x for x in capsys.readouterr().out.splitlines() if "openai_compatible:local" in x)
    assert "n/a" in line and "1/3" in line and "0.0%" not in line


def test_ties_on_score_go_to_fewer_off_rails_then_lower_cost():
    decision = decide(report(stats("a:x", 0.5), stats("b:y", 0.8, off=1.0, cost=0.01),
                             stats("c:z", 0.8, off=0.0, cost=0.02)), "a:x", 0.05)  # fmt: skip
    assert decision.winner == "c:z" and decision.promoted


def test_write_route_moves_an_array_of_tables_entry_and_keeps_the_rest(tmp_path):
    path = tmp_path / "cadre.toml"
    path.write_text(
        textwrap.dedent("""\
        # mine
        [[roles.search.candidates]]
        model = "google:gemini-2.5-flash"  # fast

        [[roles.search.candidates]]
        model = "openai:gpt-5-mini"
        effort = "low"
    """)
    )
    write_route(path, "search", Candidate(model="openai:gpt-5-mini"), [])
    text = path.read_text()
    assert text.startswith("# mine\n")
    assert text.index('model = "openai:gpt-5-mini"') < text.index('model = "google:gemini-2.5-flash"  # fast')
    assert 'effort = "low"' in text


def test_write_route_creates_the_route_from_the_effective_one(tmp_path):
    path = tmp_path / ".cadre.toml"
    path.write_text("# keep me\n[router]\ncooldown_s = 5\n")
    route = [Candidate(model="openai:gpt-5.2", effort="high"), Candidate(model="anthropic:claude-haiku-4-5")]
    write_route(path, "oracle", Candidate(model="anthropic:claude-haiku-4-5"), route)
    import tomllib

    data = tomllib.loads(path.read_text())
    assert data["router"] == {"cooldown_s": 5} and path.read_text().startswith("# keep me\n")
    assert data["roles"]["oracle"]["candidates"] == [{"model": "anthropic:claude-haiku-4-5"},
                                                     {"model": "openai:gpt-5.2", "effort": "high"}]  # fmt: skip
    fresh = tmp_path / "new" / ".cadre.toml"
    write_route(fresh, "search", Candidate(model="openai:gpt-5-mini"), [])
    assert tomllib.loads(fresh.read_text())["roles"]["search"]["candidates"] == [{"model": "openai:gpt-5-mini"}]


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / ".git").mkdir()
    (root / ".cadre.toml").write_text(PROJECT)
    (tmp_path / "suite.toml").write_text(SUITE)
    return root


def run_cli(monkeypatch, capsys, models, *args):
    monkeypatch.setattr("cadre_app.cli.eval.MODEL_FACTORY", lambda cand, cfg: models[cand.model])
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def eval_args(project, tmp_path, *extra, models=f"{HAIKU},{GPT}", ledger="run.sqlite"):
    return ["--root", str(project), "eval", "oracle", "--models", models, "--suite", str(tmp_path / "suite.toml"),
            "--repeat", "2", "--ledger", str(tmp_path / ledger), *extra]  # fmt: skip


def test_cli_promotes_the_winner_and_keeps_comments(project, tmp_path, keys, monkeypatch, capsys):
    models = {GPT: FunctionModel(gpt_reply), HAIKU: FunctionModel(haiku_reply)}
    code, out, _ = run_cli(monkeypatch, capsys, models, *eval_args(project, tmp_path, "--json", "--promote"))
    assert code == 0
    data = json.loads(out)
    by_model = {m["model"]: m for m in data["models"]}
    assert by_model[GPT]["score"] == 1.0 and by_model[HAIKU]["score"] == pytest.approx(4 / 6)
    assert by_model[HAIKU]["off_rails_pct"] == pytest.approx(100 * 0.002 / 0.014)
    assert data["ledger"] == str(tmp_path / "run.sqlite") and len(data["results"]) == 12
    promotion = data["promotion"]
    assert promotion["promoted"] and promotion["winner"] == GPT and promotion["incumbent"] == HAIKU
    assert promotion["warning"] is None  # the project file is the layer that sets the route
    text = (project / ".cadre.toml").read_text()
    assert text.startswith("# team routing, reviewed in January\n") and "# cheap first while we evaluate" in text
    assert text.index('"openai:gpt-5.2"') < text.index('"anthropic:claude-haiku-4-5", max_output_tokens = 4000')
    assert "# the incumbent" in text and "[router]\ncooldown_s = 5" in text
    from cadre_core.config import load_config

    route = load_config(project).config.roles["oracle"].candidates
    assert [c.model for c in route] == [GPT, HAIKU] and route[0].effort == "high"


def test_cli_does_not_promote_below_the_margin(project, tmp_path, keys, monkeypatch, capsys):
    models = {GPT: FunctionModel(gpt_reply), HAIKU: FunctionModel(haiku_reply)}
    code, out, _ = run_cli(monkeypatch, capsys, models, *eval_args(project, tmp_path, "--promote", "--margin", "0.5"))
    assert code == 0
    assert "Not promoted: openai:gpt-5.2 scores 1.00 vs 0.67 for anthropic:claude-haiku-4-5: +0.33 is below" in out
    assert (project / ".cadre.toml").read_text() == PROJECT
    for column in ("model", "score", "95% CI", "avg cost/task", "off-rails %", "p50", "p95"):
        assert column in out
    assert "100% (6/6)" in out and "67% (4/6)" in out and "61%-100%" in out and "14.3%" in out


def test_cli_does_not_promote_a_winner_that_goes_off_the_rails_more(project, tmp_path, keys, monkeypatch, capsys):
    def sloppy_gpt(request, model):
        if "Which file holds Store?" in request.messages[0].text and "invalid" not in request.messages[-1].text:
            return ModelResponse(text="app/store.py", usage=Usage(input_tokens=1000))
        return gpt_reply(request, model)

    def tidy_haiku(request, model):
        return answer("Use a lock.")

    models = {GPT: FunctionModel(sloppy_gpt), HAIKU: FunctionModel(tidy_haiku)}
    code, out, _ = run_cli(monkeypatch, capsys, models, *eval_args(project, tmp_path, "--promote", "--json"))
    promotion = json.loads(out)["promotion"]
    assert code == 0 and not promotion["promoted"]
    assert "goes off the rails more" in promotion["reason"] and "vs 0.0%" in promotion["reason"]
    assert (project / ".cadre.toml").read_text() == PROJECT


def test_cli_will_not_promote_without_the_incumbent(project, tmp_path, keys, monkeypatch, capsys):
    models = {GPT: FunctionModel(gpt_reply), "google:gemini-2.5-flash": FunctionModel(haiku_reply)}
    args = eval_args(project, tmp_path, "--promote", models=f"{GPT},google:gemini-2.5-flash")
    code, out, _ = run_cli(monkeypatch, capsys, models, *args)
    assert code == 0
    assert f"Not promoted: the incumbent {HAIKU} was not evaluated; add it to --models" in out
    assert (project / ".cadre.toml").read_text() == PROJECT


def test_cli_promotes_into_the_file_given_by_config(project, tmp_path, keys, monkeypatch, capsys):
    other = tmp_path / "team.toml"
    other.write_text('# team file\n[roles.oracle]\ncandidates = [{ model = "anthropic:claude-haiku-4-5" }]\n')
    models = {GPT: FunctionModel(gpt_reply), HAIKU: FunctionModel(haiku_reply)}
    code, out, err = run_cli(monkeypatch, capsys, models,
                             *eval_args(project, tmp_path, "--promote", "--config", str(other)))  # fmt: skip
    assert code == 0 and "Promoted: openai:gpt-5.2" in out
    # team.toml is not a layer cadre loads here, so the effective route still starts with haiku: say so
    warning = " ".join(err.split())
    assert f"cadre: warning: {other} now lists {GPT} first, but the effective route of 'oracle' still starts" in warning
    assert f"comes from {project / '.cadre.toml'}; {other} is not a config file loaded here" in warning
    assert (
        other.read_text().startswith("# team file\n")
        and '{ model = "openai:gpt-5.2", effort = "high" }' in other.read_text()
    )
    assert (project / ".cadre.toml").read_text() == PROJECT


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[roles.oracle\n", "cannot be read as TOML"),
        ('[roles.oracle]\ncandidates = ["openai:gpt-5.2"]\n', "roles.oracle.candidates.0: Input should be a valid"),
        ('roles = "oracle"\n', "'roles.oracle' must be a table"),
        ("[roles]\noracle = 3\n", "'roles.oracle' must be a table"),
        (None, "is not a file"),
    ],
)
def test_cli_checks_the_promote_file_before_spending_anything(project, tmp_path, keys, monkeypatch, capsys, text,
                                                              problem):  # fmt: skip
    target = tmp_path / "team.toml"
    if text is None:
        target.mkdir()
    else:
        target.write_text(text)
    models = {GPT: FunctionModel(gpt_reply), HAIKU: FunctionModel(haiku_reply)}
    code, out, err = run_cli(monkeypatch, capsys, models,
                             *eval_args(project, tmp_path, "--promote", "--config", str(target)))  # fmt: skip
    assert code == 2 and out == ""
    assert f"cadre: {target}" in err and problem in err
    assert not models[GPT].requests and not models[HAIKU].requests  # nothing was spent
    assert not (tmp_path / "run.sqlite").exists()


def test_an_env_override_of_the_route_is_named_after_promoting(project, tmp_path, keys, monkeypatch, capsys):
    monkeypatch.setenv("CADRE_ROLES__ORACLE__CANDIDATES", json.dumps([{"model": HAIKU}, {"model": GPT}]))
    models = {GPT: FunctionModel(gpt_reply), HAIKU: FunctionModel(haiku_reply)}
    code, out, err = run_cli(monkeypatch, capsys, models, *eval_args(project, tmp_path, "--promote", "--json"))
    promotion = json.loads(out)["promotion"]
    assert code == 0 and promotion["promoted"]
    assert "roles.oracle.candidates comes from env CADRE_ROLES__ORACLE__CANDIDATES" in promotion["warning"]
    assert "unset CADRE_ROLES__ORACLE__CANDIDATES" in " ".join(err.split())


def test_write_errors_are_eval_errors(tmp_path):
    from cadre_app.evals import EvalError

    (tmp_path / "file").write_text("")
    with pytest.raises(EvalError, match=r"cannot write .*file/sub/\.cadre\.toml \(.*\); fix its permissions or pass"):
        write_route(tmp_path / "file" / "sub" / ".cadre.toml", "oracle", Candidate(model=GPT), [])


def test_cli_bad_suite_is_a_clear_error(project, tmp_path, keys, monkeypatch, capsys):
    (tmp_path / "suite.toml").write_text('[[tasks]]\nid = "lock"\nprompt = "p"\ncheck = { type = "regex" }\n')
    code, out, err = run_cli(monkeypatch, capsys, {}, *eval_args(project, tmp_path))
    assert code == 2 and out == ""
    assert f"cadre: suite {tmp_path / 'suite.toml'}, task 'lock' (#1): field 'check.0.pattern': required" in err
    code, _, err = run_cli(monkeypatch, capsys, {}, "eval", "review", "--models", GPT)
    assert code == 2 and "no starter suite for 'review'; pass --suite FILE" in err


def test_provider_aliases_are_one_model_for_the_incumbent_and_the_route(tmp_path):
    """`gemini:x` and `google:x` are the same model: found as the incumbent, moved (not duplicated) in the file."""
    from cadre_app.evals.promote import file_route, promote
    from tests.core.conftest import make_config

    path = tmp_path / ".cadre.toml"
    path.write_text('[roles.oracle]\ncandidates = [\n  { model = "openai:gpt-5.2" },\n'
                    '  { model = "google:gemini-2.5-flash", effort = "high" },\n]\n')  # fmt: skip
    same = decide(report(stats("gemini:gemini-2.5-flash", 0.9), stats("openai:gpt-5.2", 0.6)),
                  "google:gemini-2.5-flash", 0.05)  # fmt: skip
    assert not same.promoted and "the incumbent google:gemini-2.5-flash (0.90) is already the best" in same.reason
    won = promote(report(stats("gemini:gemini-2.5-flash", 0.9), stats("openai:gpt-5.2", 0.6)), path=path,
                  effective=make_config(), margin=0.05)  # fmt: skip
    assert won.promoted and won.incumbent == "openai:gpt-5.2"
    route = file_route(path, "oracle")
    assert [(c.model, c.effort) for c in route] == [("google:gemini-2.5-flash", "high"), ("openai:gpt-5.2", None)]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (  # each entry's trailing comment moves with it
            '[roles.oracle]\ncandidates = [\n  { model = "openai:gpt-5.2" },  # current\n'
            '  { model = "anthropic:claude-haiku-4-5" },  # backup\n]\noff_rails = "warn"  # policy\n',
            '[roles.oracle]\ncandidates = [\n  { model = "anthropic:claude-haiku-4-5" },  # backup\n'
            '  { model = "openai:gpt-5.2" },  # current\n]\noff_rails = "warn"  # policy\n',
        ),
        (  # own-line comments above an entry move with it; the `[` line's and the closing ones stay; commas fixed
            '[roles.oracle]\ncandidates = [  # the route\n  # primary\n  { model = "openai:gpt-5.2" },\n'
            '  # fallback\n  # (cheap)\n  { model = "anthropic:claude-haiku-4-5", effort = "low" }  # backup\n'
            "  # end\n]\n",
            "[roles.oracle]\ncandidates = [  # the route\n  # fallback\n  # (cheap)\n"
            '  { model = "anthropic:claude-haiku-4-5", effort = "low" },  # backup\n'
            '  # primary\n  { model = "openai:gpt-5.2" }\n  # end\n]\n',
        ),
    ],
)
def test_moving_the_winner_carries_its_comments(tmp_path, before, after):
    from cadre_app.evals.promote import file_route

    path = tmp_path / ".cadre.toml"
    path.write_text(before)
    route = file_route(path, "oracle")
    write_route(path, "oracle", route[1], route)
    assert path.read_text() == after
