"""consult_oracle routed to `codex_cli:` answers through a fake `codex` executable (tests/core/test_codex_cli.py),
through a real in-memory MCP client and the router built as config builds it, with a ledger row per run."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from cadre_core.config import ProviderConfig
from cadre_core.models import build_model
from cadre_core.testing import wire_fake_models
from cadre_oracle.server import create_server
from tests.core.conftest import make_config
from tests.core.test_claude_cli import fake_claude  # noqa: F401 - a fixture
from tests.core.test_codex_cli import fake_codex  # noqa: F401 - a fixture
from tests.servers.conftest import make_repo

pytestmark = pytest.mark.anyio
ANSWER = {"answer": "main returns 1.", "key_points": [], "risks": [], "next_steps": [], "confidence": "high",
          "citations": [{"path": "a.py", "start_line": 1, "end_line": 2}]}  # fmt: skip


def cli_oracle(tmp_path, ref: str = "codex_cli:gpt-5.1-codex"):
    root = make_repo(tmp_path / "ws", {"a.py": "def main():\n    return 1\n"})
    config = make_config(oracle=[ref])
    provider = ref.partition(":")[0]
    config.providers[provider] = ProviderConfig(key_required=False)
    server = create_server(root=root)
    factory = lambda candidate, cfg: build_model(candidate.model, cfg.provider_config(provider))  # noqa: E731
    return server, wire_fake_models(server, factory, config=config, state=tmp_path / "state")


async def test_consult_oracle_answers_through_codex_in_read_only_mode(tmp_path, fake_codex, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FAKE_CODEX_ANSWERS", json.dumps(["{not json", json.dumps(ANSWER)]))
    server, ledger = cli_oracle(tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "What does main return?"})

    assert not result.is_error, result.content
    assert result.structured_content["answer"] == "main returns 1."
    assert result.structured_content["model"].startswith("codex_cli:gpt-5.1-codex")
    seen = json.loads(fake_codex.read_text())
    assert seen["argv"][2:4] == ["--sandbox", "read-only"]
    assert "What does main return?" in seen["prompt"]
    ledger.flush()
    rows = [(r["provider"], r["outcome"], r["cost_usd"], r["message"], r["input_tokens"]) for r in ledger.store.rows()]
    # the invalid first answer goes through the router's validator and one repair, as for any provider
    assert rows[-1] == ("codex_cli", "ok", None, "billing=subscription", 1200)
    assert rows[0][:3] == ("codex_cli", "off_rails", None) and len(rows) == 2


async def test_the_ledger_keeps_the_cost_claude_reports(tmp_path, fake_claude, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FAKE_CLAUDE_RESULT", json.dumps(ANSWER))
    server, ledger = cli_oracle(tmp_path, "claude_cli:sonnet")
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "What does main return?"})
    assert not result.is_error, result.content
    ledger.flush()
    [row] = ledger.store.rows()
    assert (row["provider"], row["cost_usd"], row["message"]) == ("claude_cli", 0.0123, "billing=reported by claude")
