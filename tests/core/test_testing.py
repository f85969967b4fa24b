"""The helpers `cadre_core.testing` ships: a server wired to fake models."""

from __future__ import annotations

import pytest

from cadre_core.mcp_server import build_server
from cadre_core.models.base import Message, ModelRequest
from cadre_core.testing import TestModel, wire_fake_models
from tests.core.conftest import ledger_rows, make_config

pytestmark = pytest.mark.anyio


async def test_a_server_wired_to_fake_models_routes_by_any_alias_and_keeps_state_apart(tmp_path, keys):
    server = build_server("oracle", "cadre-test", "test server")
    config = make_config(oracle=["Gemini:g-1", "openai:gpt-5.2"])
    gemini = TestModel("from gemini")
    ledger = wire_fake_models(server, {"gemini:g-1": gemini, "openai:gpt-5.2": None}, config=config,
                              state=tmp_path / "state")  # fmt: skip
    kit = server.kit
    response = await kit.router.request("oracle", ModelRequest([Message.user("q")], max_output_tokens=10))
    assert response.text == "from gemini"
    assert kit.ledger is ledger and kit.router.ledger is ledger
    assert config.paths.jobs == tmp_path / "state" / "jobs.sqlite"
    assert [r["model"] for r in ledger_rows(ledger)] == ["g-1"]
