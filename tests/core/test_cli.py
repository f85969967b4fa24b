import json
import subprocess
import sys

import pytest

from cadre_app.cli import main
from cadre_core.ledger import Ledger, LedgerRow


def test_doctor_reports_keys_roles_sources_and_versions(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    assert main(["--root", str(tmp_path), "doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["keys"]["google"]["found_in"] == "GEMINI_API_KEY"
    assert data["keys"]["openai"]["found_in"] is None
    assert data["roles"]["review"]["routes_to"].startswith("google:")
    assert data["roles"]["search"]["routes_to"].startswith("google:")
    assert data["roles"]["oracle"]["routes_to"].startswith("google:")  # first keyed fallback
    assert data["config_sources"][0] == "built-in defaults"
    assert data["versions"]["mcp"].startswith("2.")
    assert data["ledger"].endswith("ledger.sqlite")


def test_doctor_says_where_the_librarian_reads_from(capsys, monkeypatch, tmp_path):
    venv = tmp_path / ".venv"
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.setenv("GH_TOKEN", "gho_x")
    assert main(["--root", str(tmp_path), "doctor", "--json"]) == 0
    lib = json.loads(capsys.readouterr().out)["librarian"]
    assert lib["github_token"] == "GH_TOKEN" and "gho_x" not in json.dumps(lib)
    assert lib["python_packages"] == f"virtualenv {venv}" and lib["node_modules"] is False
    monkeypatch.delenv("GH_TOKEN")
    monkeypatch.setenv("GH_CONFIG_DIR", str(tmp_path / "no-gh"))
    assert main(["--root", str(tmp_path), "doctor"]) == 0
    assert "no GitHub token" in capsys.readouterr().out


def test_doctor_table_tells_a_keyless_user_what_to_do(capsys, tmp_path):
    assert main(["--root", str(tmp_path), "doctor"]) == 0
    out = capsys.readouterr().out
    assert "No provider key found" in out
    assert "OPENAI_API_KEY" in out
    assert main(["--root", str(tmp_path), "doctor", "--json"]) == 0
    routes = {role: r["routes_to"] for role, r in json.loads(capsys.readouterr().out)["roles"].items()}
    # every role, search included (its deep mode), asks the host's model when no key is set
    assert set(routes.values()) == {"sampling:host (the host's model, if the host supports MCP sampling)"}


def test_config_show_masks_secrets_and_names_sources(capsys, monkeypatch, tmp_path):
    (tmp_path / ".cadre.toml").write_text("[router]\ncooldown_s = 9\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")
    assert main(["--root", str(tmp_path), "config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert "sk-very-secret-value" not in out
    rows = {r["key"]: r for r in json.loads(out)}
    assert rows["router.cooldown_s"] == {
        "key": "router.cooldown_s",
        "value": 9.0,
        "source": str(tmp_path / ".cadre.toml"),
    }
    assert rows["providers.openai.api_key_env"]["value"] == ["OPENAI_API_KEY (set)"]
    assert rows["roles.oracle.candidates"]["source"] == "built-in defaults"


def test_config_show_masks_the_storage_urls_password(capsys, monkeypatch, tmp_path):
    config = tmp_path / "team.toml"
    config.write_text('[storage]\nurl = "postgresql://cadre:pg-pass-123@db.internal:5432/cadre"\n')
    monkeypatch.setenv("CADRE_CONFIG", str(config))
    assert main(["--root", str(tmp_path), "config", "show", "--json"]) == 0
    rows = {r["key"]: r["value"] for r in json.loads(capsys.readouterr().out)}
    assert rows["storage.url"] == "postgresql://cadre:***@db.internal:5432/cadre"


def test_bad_config_exits_2_with_the_message(capsys, tmp_path):
    (tmp_path / ".cadre.toml").write_text("[budget]\nper_call_usd = -3\n")
    assert main(["--root", str(tmp_path), "doctor"]) == 2
    err = capsys.readouterr().err
    assert ".cadre.toml" in err and "budget.per_call_usd" in err


@pytest.fixture
def spent(tmp_path, monkeypatch):
    path = tmp_path / "ledger.sqlite"
    (tmp_path / ".cadre.toml").write_text(f'[paths]\nledger = "{path}"\n')
    ledger = Ledger(path)
    base = {"provider": "openai", "model": "gpt-5.2", "outcome": "ok"}
    ledger.record(LedgerRow(role="oracle", cost_usd=0.40, thread_id="t1", **base))
    ledger.record(LedgerRow(role="oracle", cost_usd=0.10, thread_id="t1", **base))
    ledger.record(
        LedgerRow(
            role="search",
            provider="google",
            model="gemini-3-flash-preview",
            outcome="ok",
            cost_usd=0.01,
        )
    )
    assert ledger.flush()
    return tmp_path


def test_cost_json_groups_spend(capsys, spent):
    assert main(["--root", str(spent), "cost", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"role", "model", "day", "thread", "budgets", "settled_after_crash"}
    by_role = {g["key"]: g["cost_usd"] for g in data["role"]}
    assert by_role == pytest.approx({"oracle": 0.5, "search": 0.01})
    assert {g["key"]: g["attempts"] for g in data["thread"]} == {"t1": 2, None: 1}


def test_cost_table(capsys, spent, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--root", str(spent), "cost", "--by", "model"]) == 0
    out = capsys.readouterr().out
    assert "Spend by model" in out and "openai:gpt-5.2" in out and "0.5000" in out


def test_cost_with_no_ledger_yet(capsys, tmp_path):
    assert main(["--root", str(tmp_path), "cost"]) == 0
    assert "No model calls recorded yet" in capsys.readouterr().out


def cadre(*argv: str, tmp_path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "cadre_app.cli", *argv], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.slow
def test_call_runs_a_tool_through_a_real_client(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "parser.py").write_text("def parse_header(line):\n    return line.split(':')\n")
    root = str(tmp_path / "ws")
    ok = cadre("call", "search", "search_codebase", "--root", root, "--json", '{"query": "parse header"}',
               tmp_path=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["hits"][0]["path"] == "parser.py"
    failed = cadre("call", "search", "find_symbol", "--root", root, "--json", '{"name": ""}', tmp_path=tmp_path)
    assert failed.returncode == 1 and "find_symbol failed" in failed.stderr
    missing = cadre("call", "search", "nope", "--root", root, "--json", "{}", tmp_path=tmp_path)
    assert missing.returncode == 2
    assert "has no tool 'nope'; its tools are search_codebase, find_symbol" in missing.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["call", "search", "search_codebase", "--json", "{bad"], "--json is not valid JSON"),
        (["call", "search", "search_codebase", "--json", "[1]"], "must be a JSON object"),
        (["call", "poet", "x"], "unknown server 'poet'"),
        (["call", "search", "x", "--url", "http://127.0.0.1:9/mcp", "--timeout", "5"], "could not connect to http:"),
    ],
)
def test_call_errors_say_what_to_change(capsys, tmp_path, argv, message):
    assert main(["--root", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_cost_shows_what_is_left_of_each_budget(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    budget_file = tmp_path / "budget.sqlite"
    (tmp_path / ".cadre.toml").write_text(
        f'[budget]\nper_day_usd = 2.0\n[roles.oracle]\nbudget_per_day_usd = 1.0\n[paths]\nbudget = "{budget_file}"\n'
    )
    from cadre_core.budget import Budget, Caps

    Budget(budget_file).reserve(Caps(per_day=2.0), 0.25, role="oracle", thread_id=None)
    assert main(["--root", str(tmp_path), "cost", "--json"]) == 0
    caps = {row["cap"]: row for row in json.loads(capsys.readouterr().out)["budgets"]}
    assert caps["per_day_usd"]["remaining_usd"] == pytest.approx(1.75)
    assert caps["roles.oracle.budget_per_day_usd"]["remaining_usd"] == pytest.approx(0.75)
    assert main(["--root", str(tmp_path), "cost"]) == 0
    assert "Budgets" in capsys.readouterr().out


def test_cost_lists_the_per_call_cap_and_the_busiest_threads(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    budget_file = tmp_path / "budget.sqlite"
    (tmp_path / ".cadre.toml").write_text(
        f'[budget]\nper_call_usd = 0.5\nper_thread_usd = 1.0\n[paths]\nbudget = "{budget_file}"\n'
    )
    from cadre_core.budget import Budget, Caps

    budget, caps = Budget(budget_file), Caps(per_call=0.5, per_thread=1.0)
    for n in range(7):  # thread t0 holds 0.01, ..., t5 0.06; t6 is settled at 0.3
        held = budget.reserve(caps, 0.01 * (n + 1), role="oracle", thread_id=f"t{n}")
    budget.settle(held, 0.3)
    budget.reserve(caps, 0.2, role="oracle", thread_id=None)  # no thread: not listed
    assert main(["--root", str(tmp_path), "cost", "--json"]) == 0
    rows = {row["cap"]: row for row in json.loads(capsys.readouterr().out)["budgets"]}
    assert rows["per_call_usd"] == {"cap": "per_call_usd", "limit_usd": 0.5, "spent_usd": None, "remaining_usd": None}
    threads = rows["per_thread_usd"]["threads"]
    assert [t["thread_id"] for t in threads] == ["t6", "t5", "t4", "t3", "t2"]
    assert threads[0]["spent_usd"] == pytest.approx(0.3) and threads[0]["remaining_usd"] == pytest.approx(0.7)
    assert rows["per_thread_usd"]["remaining_usd"] == pytest.approx(0.7)  # the busiest thread's
    assert main(["--root", str(tmp_path), "cost"]) == 0
    out = capsys.readouterr().out
    assert "per call: $0.5000 cap" in out
    assert "thread t6" in out and "thread t2" in out and "thread t1" not in out


def test_cost_with_an_unusable_budget_path_says_what_to_fix(capsys, tmp_path):
    (tmp_path / "afile").write_text("")
    unusable = tmp_path / "afile" / "sub" / "budget.sqlite"
    (tmp_path / ".cadre.toml").write_text(f'[budget]\nper_day_usd = 2.0\n[paths]\nbudget = "{unusable}"\n')
    assert main(["--root", str(tmp_path), "cost"]) == 2
    err = capsys.readouterr().err
    assert f"the budget store at {unusable} cannot be opened" in err
    assert "set [paths] budget" in err and "Traceback" not in err


def test_trace_shows_each_attempt_of_a_thread(capsys, spent, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    ledger = Ledger(spent / "ledger.sqlite")
    ledger.record(LedgerRow(role="oracle", provider="openai", model="gpt-5.2", outcome="off_rails",
                            detector="repetition_loop", thread_id="t1", cost_usd=0.02))  # fmt: skip
    assert ledger.flush()
    assert main(["--root", str(spent), "trace", "t1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["outcome"], r["detector"]) for r in rows][-1] == (
        "openai:gpt-5.2", "off_rails", "repetition_loop")  # fmt: skip
    assert len(rows) == 3
    assert main(["--root", str(spent), "trace", "t1"]) == 0
    assert "3 attempts" in capsys.readouterr().out
    assert main(["--root", str(spent), "trace", "nope"]) == 2
    assert "no attempts recorded for thread 'nope'" in capsys.readouterr().err


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path):
    # `cadre ... | head`: the reader is gone before cadre writes (closed at once; the process takes far longer
    # to start), so its first write fails with EPIPE (pipe(7)); no traceback, exit 141 like a cut-off writer.
    (tmp_path / "app.py").write_text("def handler():\n    return 1\n")
    cadre = subprocess.Popen([sys.executable, "-m", "cadre_app.cli", "search", "--json", "--root", str(tmp_path),
                              "handler"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    cadre.stdout.close()
    stderr = cadre.stderr.read().decode()
    assert cadre.wait(timeout=60) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_cost_by_user_sums_each_users_spend_on_each_backend(capsys, storage, tmp_path, monkeypatch):
    from cadre_core.identity import acting_as

    if storage.url:
        monkeypatch.setenv("CADRE_STORAGE_URL", storage.url)
        ledger = Ledger(None, url=storage.url)
    else:
        (tmp_path / ".cadre.toml").write_text(f'[paths]\nledger = "{storage.target("ledger")}"\n')
        ledger = Ledger(storage.target("ledger"))
    base = {"role": "oracle", "provider": "openai", "model": "gpt-5.2", "outcome": "ok"}
    for user, cost in (("alice", 0.25), ("alice", 0.5), ("bob", 0.125), (None, 1.0)):
        with acting_as(user):
            ledger.record(LedgerRow(cost_usd=cost, **base))
    ledger.close()
    assert main(["--root", str(tmp_path), "cost", "--by", "user", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {g["key"]: (g["attempts"], g["cost_usd"]) for g in data["user"]} == {
        None: (1, 1.0),
        "alice": (2, 0.75),
        "bob": (1, 0.125),
    }
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--root", str(tmp_path), "cost", "--by", "user"]) == 0
    assert "Spend by user" in capsys.readouterr().out


def test_doctor_reports_the_storage_backend_and_whether_its_schema_is_current(capsys, storage, tmp_path, monkeypatch):
    from cadre_core.ledger import MIGRATIONS, SQLLedgerStore

    if storage.url:
        monkeypatch.setenv("CADRE_STORAGE_URL", storage.url)
    else:
        (tmp_path / ".cadre.toml").write_text(f'[paths]\nledger = "{storage.target("ledger")}"\n')

    def doctor() -> dict:
        assert main(["--root", str(tmp_path), "doctor", "--json"]) == 0
        return json.loads(capsys.readouterr().out)["storage"]

    before = doctor()
    assert before["backend"] == storage.dialect and before["error"] is None
    assert before["stores"]["ledger"]["version"] in (None, 0)  # doctor reads only: it creates nothing
    assert storage.url or not storage.root.joinpath("ledger.sqlite").exists()
    store = SQLLedgerStore(storage.target("ledger"))
    store.db.execute("UPDATE schema_version SET version = 1 WHERE component = 'ledger'")  # as an older release left it
    behind = doctor()
    assert behind["stores"]["ledger"] == {"where": behind["url"] or str(storage.target("ledger")), "version": 1,
                                          "latest": MIGRATIONS.latest}  # fmt: skip
    assert behind["current"] is False
    store.db.execute("UPDATE schema_version SET version = ? WHERE component = 'ledger'", (MIGRATIONS.latest,))
    store.close()
    assert doctor()["stores"]["ledger"]["version"] == MIGRATIONS.latest
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["--root", str(tmp_path), "doctor"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Storage:"))
    assert "schema current (ledger 3" in line
    if storage.url:
        password = storage.url.split("@")[0].rsplit(":", 1)[-1]
        assert line.startswith("Storage: PostgreSQL at postgresql://") and "***@" in line and password not in line
        assert password not in json.dumps(behind)
