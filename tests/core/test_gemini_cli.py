"""`gemini_cli:` through a fake `gemini` on PATH that prints Gemini CLI's `--output-format json` object
(google-gemini/gemini-cli docs/cli/headless.md: `response`, `stats`, `error`; exit 1 on an API failure)."""

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

FAKE_GEMINI = textwrap.dedent(
    """\
    import json, os, sys
    argv, prompt = sys.argv[1:], sys.stdin.read()
    json.dump({"argv": argv, "prompt": prompt}, open(os.environ["FAKE_GEMINI_LOG"], "w"))
    mode = os.environ.get("FAKE_GEMINI_MODE", "ok")
    tokens = {"prompt": 2000, "candidates": 40, "total": 2140, "cached": 500, "thoughts": 100, "tool": 0}
    out = {"response": "hello from gemini", "stats": {"models": {"gemini-2.5-pro": {"tokens": tokens}}}}
    if mode == "logged_out":
        out = {"error": {"type": "FatalAuthenticationError", "message": "Please set an Auth method", "code": 41}}
    if mode == "quota":
        out = {"error": {"type": "Error", "message": "RESOURCE_EXHAUSTED: Quota exceeded", "code": 1}}
    print("Loaded cached credentials.", file=sys.stderr)
    print(json.dumps(out))
    sys.exit(0 if "response" in out else 1)
    """
)


@pytest.fixture
def fake_gemini(tmp_path, monkeypatch):
    return put_on_path("gemini", FAKE_GEMINI, tmp_path, monkeypatch)


async def test_answers_without_edit_approval_and_the_prompt_on_stdin(fake_gemini):
    response = await build_model("gemini_cli:gemini-2.5-pro", ProviderConfig()).request(ask("it's `$(id)`"))
    seen = json.loads(fake_gemini.read_text())
    assert seen["argv"][:4] == ["--output-format", "json", "--approval-mode", "default"]
    assert seen["argv"][4:6] == ["--model", "gemini-2.5-pro"] and seen["argv"][-2] == "-p"
    assert "yolo" not in " ".join(seen["argv"]) and "`$(id)`" in seen["prompt"]
    u = response.usage
    assert (u.input_tokens, u.cache_read_tokens, u.output_tokens, u.reasoning_tokens) == (2000, 500, 140, 100)
    assert response.text == "hello from gemini" and response.billing == "subscription"


async def test_writes_need_allow_writes(fake_gemini):
    response = await build_model("gemini_cli:default", ProviderConfig(allow_writes=True)).request(ask())
    argv = json.loads(fake_gemini.read_text())["argv"]
    assert argv[2:4] == ["--approval-mode", "auto_edit"] and "--model" not in argv
    assert response.ledger_note == "billing=subscription; writes allowed"


@pytest.mark.parametrize(
    ("mode", "error", "fix"),
    [("logged_out", AgentUnavailableError, "sign in"), ("quota", RateLimitError, "Quota exceeded")],
)
async def test_failures_map_to_errors_with_the_fix(fake_gemini, monkeypatch, mode, error, fix):
    monkeypatch.setenv("FAKE_GEMINI_MODE", mode)
    with pytest.raises(error, match=fix):
        await build_model("gemini_cli:pro", ProviderConfig()).request(ask())
