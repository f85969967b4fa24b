"""A hostile model (a provider's or the host's) cannot crash a tool call or stall the server."""

import time

import pytest
from mcp import Client

from cadre_core.errors import CadreError
from cadre_core.models.base import ModelResponse, Usage, parse_json_text
from cadre_core.models.openai import _arguments
from cadre_core.models.test import FunctionModel
from tests.servers.test_oracle_server import oracle

pytestmark = pytest.mark.anyio
DEEP = "[" * 100_000  # json's decoder recurses once per level: this raises RecursionError, not ValueError


def test_deeply_nested_json_is_no_json():
    assert parse_json_text(DEEP) is None
    assert parse_json_text('Here: {"answer": ' + DEEP) is None
    assert _arguments(DEEP) == {"_raw": DEEP}


async def test_a_deeply_nested_reply_is_an_invalid_answer_not_an_internal_error(tmp_path, keys):
    def reply(request, model):
        return ModelResponse(text='{"answer": ' + DEEP, usage=Usage(input_tokens=10, output_tokens=10))

    (tmp_path / "ws").mkdir()
    server, _ = oracle(tmp_path / "ws", {"openai:gpt-5.2": FunctionModel(reply)}, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
    assert result.is_error
    text = result.content[0].text
    assert "internal error" not in text and "RecursionError" not in text
    assert "not a JSON object" in text


def test_a_catastrophic_grep_pattern_stops_at_its_time_budget(tmp_path, monkeypatch):
    from cadre_core.workspace import Workspace
    from cadre_oracle import readonly

    (tmp_path / "notes.md").write_text("=" * 40 + "\n" + "x" * 1500 + "\nplain line\n")
    monkeypatch.setattr(readonly, "GREP_BUDGET_S", 0.5)
    ws = Workspace([tmp_path])
    started = time.monotonic()
    # with `re`, each takes hours on these lines (nested quantifiers backtrack 2**n ways); `regex` is quick on
    # the first two and stops the third at the budget
    readonly.grep(ws, "(=|=)*x")
    readonly.grep(ws, "(a|a)*c")
    with pytest.raises(CadreError, match=r"too slow to match .*use a simpler pattern"):
        readonly.grep(ws, r"^(([a-z])+.)+[A-Z]([a-z])+$")
    assert time.monotonic() - started < 20  # without a budget: hours
    assert readonly.grep(ws, "pla.n") == "notes.md:3: plain line"  # ordinary patterns still work
