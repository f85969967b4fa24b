"""`claude_cli:` through a fake `claude` on PATH that prints Claude Code's `--output-format json` result object
(docs.claude.com headless mode: `type`, `subtype`, `is_error`, `result`, `session_id`, `total_cost_usd`, `usage`)."""

from __future__ import annotations

import json
import textwrap

import pytest

from cadre_core.config import ProviderConfig
from cadre_core.errors import RateLimitError
from cadre_core.models import build_model
from cadre_core.models.cli_agent import AgentUnavailableError
from tests.core.test_codex_cli import ask, put_on_path

pytestmark = pytest.mark.anyio

FAKE_CLAUDE = textwrap.dedent(
    """\
    import json, os, sys
    argv, prompt = sys.argv[1:], sys.stdin.read()
    json.dump({"argv": argv, "prompt": prompt}, open(os.environ["FAKE_CLAUDE_LOG"], "w"))
    mode = os.environ.get("FAKE_CLAUDE_MODE", "ok")
    result = {"type": "result", "subtype": "success", "is_error": False,
              "result": os.environ.get("FAKE_CLAUDE_RESULT", "hello from claude"),
              "session_id": "s-1", "total_cost_usd": 0.0123, "num_turns": 1,
              "usage": {"input_tokens": 10, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000,
                        "output_tokens": 20}}
    if mode == "logged_out":
        result.update(is_error=True, result="Invalid API key · Please run /login")
    if mode == "limit":
        result.update(is_error=True, result="Claude AI usage limit reached|1767225600")
    print(json.dumps(result))
    sys.exit(1 if result["is_error"] else 0)
    """
)


@pytest.fixture
def fake_claude(tmp_path, monkeypatch):
    return put_on_path("claude", FAKE_CLAUDE, tmp_path, monkeypatch)


async def test_answers_in_plan_mode_with_its_reported_cost(fake_claude):
    response = await build_model("claude_cli:sonnet", ProviderConfig()).request(ask("it's `$(id)`"))
    seen = json.loads(fake_claude.read_text())
    assert seen["argv"] == ["-p", "--output-format", "json", "--permission-mode", "plan", "--model", "sonnet"]
    assert "`$(id)`" in seen["prompt"] and "You are the oracle." in seen["prompt"]
    assert response.text == "hello from claude" and response.response_id == "s-1"
    u = response.usage
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens) == (1110, 1000, 100, 20)
    assert response.billing == "reported" and response.cost_usd == pytest.approx(0.0123)


async def test_writes_need_allow_writes(fake_claude):
    response = await build_model("claude_cli:default", ProviderConfig(allow_writes=True)).request(ask())
    argv = json.loads(fake_claude.read_text())["argv"]
    assert argv[3:5] == ["--permission-mode", "acceptEdits"] and "--model" not in argv
    assert "bypassPermissions" not in argv and "--dangerously-skip-permissions" not in argv
    assert response.ledger_note == "billing=reported by claude; writes allowed"


@pytest.mark.parametrize(
    ("mode", "error", "fix"),
    [("logged_out", AgentUnavailableError, "log in"), ("limit", RateLimitError, "usage limit reached")],
)
async def test_failures_map_to_errors_with_the_fix(fake_claude, monkeypatch, mode, error, fix):
    monkeypatch.setenv("FAKE_CLAUDE_MODE", mode)
    with pytest.raises(error, match=fix):
        await build_model("claude_cli:sonnet", ProviderConfig()).request(ask())
