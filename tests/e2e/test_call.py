"""`cadre call` as a user runs it: the caller's environment reaches the server, tokens reach `--url`."""

import json
import subprocess
import sys

import pytest

from cadre_app.testing import free_port, wait_until_healthy
from tests.e2e.test_oracle_jobs_stdio import ANSWER, FakeOpenAI, fake_openai  # noqa: F401 - fixture

TOKEN = "call-t0ken-" + "b" * 24


def cadre(*argv: str, env: dict, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cadre_app.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.fixture
def home(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "cache.py").write_text("def cache_key(query):\n    return query\n")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    return tmp_path, ws, env


def test_the_callers_keys_base_url_and_data_dir_reach_the_spawned_server(home, fake_openai):  # noqa: F811
    tmp_path, ws, env = home
    env = {**env, "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai}
    question = json.dumps({"question": "Why do tenants see each other's results?", "files": ["cache.py"]})
    done = cadre("call", "oracle", "consult_oracle", "--root", str(ws), "--json", question, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == ANSWER["answer"]
    assert len(FakeOpenAI.calls) == 1
    assert done.stderr == ""  # the server's JSON log lines stay out of the way without --verbose
    spent = cadre("--root", str(ws), "cost", "--json", env=env)  # the ledger is where `cadre cost` looks
    assert spent.returncode == 0, spent.stderr
    assert (tmp_path / "data" / "cadre").is_dir() and '"oracle"' in spent.stdout


def test_server_logs_show_only_with_verbose_and_a_tool_error_has_one_prefix(home):
    _, ws, env = home
    quiet = cadre("call", "oracle", "consult_oracle", "--root", str(ws), "--json", '{"question": "q"}', env=env)
    loud = cadre("call", "oracle", "consult_oracle", "--root", str(ws), "--json", '{"question": "q"}',
                 "--verbose", env=env)  # fmt: skip
    assert quiet.returncode == loud.returncode == 1
    assert quiet.stderr.startswith("cadre: consult_oracle failed: ") and "OPENAI_API_KEY" in quiet.stderr
    assert "Error executing tool" not in quiet.stderr and '"event"' not in quiet.stderr
    assert '"event": "candidate skipped"' in loud.stderr


@pytest.fixture
def protected(home):
    """`cadre up` on loopback with a bearer token, serving search over the workspace."""
    tmp_path, ws, env = home
    (ws / "alpha.py").write_text("def alpha_function():\n    return 1\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cadre_app.cli", "--root", str(ws), "up", "--port", str(port), "--servers", "search",
         "--grace", "1"], env={**env, "CADRE_TOKENS": TOKEN}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_healthy(proc, f"http://127.0.0.1:{port}", timeout=30)
        yield f"http://127.0.0.1:{port}/search/mcp", env, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_url_sends_the_token_from_env_or_file_and_a_401_says_what_to_set(protected):
    url, env, tmp_path = protected
    args = ("call", "search", "search_codebase", "--url", url, "--json", '{"query": "alpha function"}')
    refused = cadre(*args, env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"cadre: {url}: the server wants a token (none was sent): set CADRE_TOKEN or pass --token-file"
    )
    wrong = cadre(*args, env={**env, "CADRE_TOKEN": "not-the-token-at-all"})
    assert "the token was refused" in wrong.stderr and "ExceptionGroup" not in wrong.stderr
    by_env = cadre(*args, env={**env, "CADRE_TOKEN": TOKEN})
    assert by_env.returncode == 0, by_env.stderr
    assert json.loads(by_env.stdout)["hits"][0]["path"] == "alpha.py"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    by_file = cadre(*args, "--token-file", str(token_file), env=env)
    assert by_file.returncode == 0, by_file.stderr
    missing = cadre(*args, "--token-file", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 2 and "cannot read --token-file" in missing.stderr


def test_a_refused_connection_names_the_url(home):
    _, _, env = home
    done = cadre("call", "search", "x", "--url", f"http://127.0.0.1:{free_port()}/search/mcp", "--timeout", "5",
                 env=env)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("cadre: could not connect to http://127.0.0.1:")
    assert "is the server running?" in done.stderr and "ExceptionGroup" not in done.stderr
