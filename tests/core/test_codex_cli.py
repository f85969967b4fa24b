"""`codex_cli:` through a fake `codex` executable on PATH that speaks `codex exec --json`.

The fake's events follow openai/codex codex-rs/exec/src/exec_events.rs (docs/exec.md): `thread.started`,
`turn.started`, `item.completed` with an `agent_message` item, `turn.completed` with
`usage {input_tokens, cached_input_tokens, output_tokens}`, `turn.failed {error: {message}}` and `error`."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from cadre_core.config import CadreConfig, ProviderConfig
from cadre_core.errors import RateLimitError
from cadre_core.models import Message, ModelRequest, build_model
from cadre_core.models.cli_agent import AgentUnavailableError

pytestmark = pytest.mark.anyio

FAKE_CODEX = textwrap.dedent(
    """\
    import json, os, subprocess, sys, time
    log = os.environ["FAKE_CODEX_LOG"]
    argv = sys.argv[1:]
    prompt = sys.stdin.read()
    schema = None
    if "--output-schema" in argv:
        schema = json.load(open(argv[argv.index("--output-schema") + 1]))
    json.dump({"argv": argv, "prompt": prompt, "schema": schema, "pgid": os.getpgid(0), "pid": os.getpid()},
              open(log, "w"))
    mode = os.environ.get("FAKE_CODEX_MODE", "ok")
    def emit(event):
        print(json.dumps(event), flush=True)
    emit({"type": "thread.started", "thread_id": "th_1"})
    emit({"type": "turn.started"})
    if mode == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open(log + ".child", "w").write(str(child.pid))
        time.sleep(600)
    if mode == "logged_out":
        emit({"type": "error", "message": "401 Unauthorized: Not logged in. Run codex login."})
        sys.exit(1)
    if mode == "quota":
        emit({"type": "turn.failed", "error": {"message": "You've hit your usage limit. Try again later."}})
        sys.exit(1)
    if mode == "crash":
        print("thread 'main' panicked", file=sys.stderr)
        sys.exit(101)
    answers = json.loads(os.environ.get("FAKE_CODEX_ANSWERS", '["hello from codex"]'))
    runs = int(open(log + ".n").read()) if os.path.exists(log + ".n") else 0
    open(log + ".n", "w").write(str(runs + 1))
    answer = answers[min(runs, len(answers) - 1)]
    emit({"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "thinking"}})
    emit({"type": "item.completed", "item": {"id": "item_1", "type": "agent_message",
          "text": answer}})
    emit({"type": "turn.completed",
          "usage": {"input_tokens": 1200, "cached_input_tokens": 200, "output_tokens": 34}})
    """
)


@pytest.fixture
def fake_codex(tmp_path, monkeypatch):
    """A `codex` on PATH; returns the path of the JSON log it writes (argv, stdin, schema, process group)."""
    return put_on_path("codex", FAKE_CODEX, tmp_path, monkeypatch)


def put_on_path(name: str, script: str, tmp_path: Path, monkeypatch) -> Path:
    """`script` as executable `name` first on PATH; returns the log path it gets as FAKE_<NAME>_LOG."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!{sys.executable}\n{script}")
    exe.chmod(0o755)
    log = tmp_path / f"{name}.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(f"FAKE_{name.upper()}_LOG", str(log))
    return log


def ask(text: str = "What does main do?", **kw) -> ModelRequest:
    return ModelRequest([Message.user(text)], system="You are the oracle.", **kw)


async def test_answers_in_the_read_only_sandbox_with_the_prompt_on_stdin(fake_codex):
    model = build_model("codex_cli:gpt-5.1-codex", ProviderConfig(key_required=False))
    await model.prepare()
    response = await model.request(ask("it's `$(rm -rf /)`; --sandbox danger-full-access", effort="high"))

    seen = json.loads(fake_codex.read_text())
    assert seen["argv"][:5] == ["exec", "--json", "--sandbox", "read-only", "--skip-git-repo-check"]
    assert seen["argv"][-1] == "-" and "danger-full-access" not in seen["argv"]
    assert seen["argv"][5:7] == ["--model", "gpt-5.1-codex"]
    assert 'model_reasoning_effort="high"' in seen["argv"]
    assert "You are the oracle." in seen["prompt"] and "`$(rm -rf /)`" in seen["prompt"]
    assert seen["pgid"] == seen["pid"]  # its own process group
    assert response.text == "hello from codex" and response.response_id == "th_1"
    assert (response.usage.input_tokens, response.usage.cache_read_tokens, response.usage.output_tokens) == (
        1200, 200, 34)  # fmt: skip
    assert response.billing == "subscription" and response.ledger_note == "billing=subscription"


async def test_writes_need_allow_writes_and_are_noted(fake_codex):
    model = build_model("codex_cli:default", ProviderConfig(key_required=False, allow_writes=True))
    response = await model.request(ask())
    argv = json.loads(fake_codex.read_text())["argv"]
    assert argv[2:4] == ["--sandbox", "workspace-write"] and "--model" not in argv
    assert response.ledger_note == "billing=subscription; writes allowed"


def test_allow_writes_is_refused_outside_the_cli_agents():
    with pytest.raises(ValueError, match="allow_writes are read only for codex_cli"):
        CadreConfig.model_validate({"providers": {"openai": {"allow_writes": True}}})


async def test_a_strict_schema_goes_to_output_schema(fake_codex, monkeypatch):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}  # fmt: skip
    monkeypatch.setenv("FAKE_CODEX_ANSWERS", json.dumps(['{"a": "x"}']))
    response = await build_model("codex_cli:m", ProviderConfig()).request(ask(output_schema=schema))
    seen = json.loads(fake_codex.read_text())
    assert seen["schema"] == schema and response.output == {"a": "x"}
    assert "JSON schema" in seen["prompt"]


@pytest.mark.parametrize(
    ("mode", "error", "fix"),
    [("logged_out", AgentUnavailableError, "run `codex login`"), ("quota", RateLimitError, "usage limit"),
     ("crash", Exception, "panicked")],
)  # fmt: skip
async def test_failures_map_to_errors_with_the_fix(fake_codex, monkeypatch, mode, error, fix):
    monkeypatch.setenv("FAKE_CODEX_MODE", mode)
    with pytest.raises(error, match=fix) as caught:
        await build_model("codex_cli:m", ProviderConfig()).request(ask())
    assert caught.value.fallback
    assert caught.value.retryable == (mode != "logged_out")


async def test_a_missing_binary_is_skipped_with_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AgentUnavailableError, match="npm install -g @openai/codex"):
        await build_model("codex_cli:m", ProviderConfig()).prepare()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie waits for its (re)parent to reap it: it no longer runs


def _all_gone(pids: list[int], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_alive(p) for p in pids)


async def test_a_time_out_kills_the_process_group(fake_codex, monkeypatch):
    monkeypatch.setenv("FAKE_CODEX_MODE", "hang")
    model = build_model("codex_cli:m", ProviderConfig())
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(3):
            await model.request(ask())
    assert time.perf_counter() - started < 6
    leader = json.loads(fake_codex.read_text())["pid"]
    child = int(fake_codex.with_suffix(".json.child").read_text())
    assert _all_gone([leader, child], within_s=5)  # the CLI and the process it started


def test_doctor_shows_whether_codex_is_installed_and_logged_in(fake_codex, monkeypatch, tmp_path, capsys):
    from cadre_app.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CODEX_API_KEY", raising=False)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    monkeypatch.setenv("COLUMNS", "400")  # rich would wrap the path
    assert main(["--root", str(tmp_path), "doctor", "--json"]) == 0
    codex = json.loads(capsys.readouterr().out)["cli_agents"]["codex_cli"]
    assert codex["installed"] == str(tmp_path / "bin" / "codex") and codex["login"] is None
    (tmp_path / "codex-home").mkdir()
    (tmp_path / "codex-home" / "auth.json").write_text("{}")
    assert main(["--root", str(tmp_path), "doctor"]) == 0
    out = capsys.readouterr().out
    assert "found: " + str(tmp_path / "codex-home" / "auth.json") in out
