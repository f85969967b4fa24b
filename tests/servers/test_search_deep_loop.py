"""Deep search stops calling the engine when the model repeats an identical call (tool-call-loop detector)."""

import pytest
from mcp import Client

from cadre_core.models.base import ModelResponse, ToolCall, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.testing import wire_fake_models
from cadre_search.deep import MAX_TURNS, DeepSearch
from cadre_search.server import create_server
from tests.core.conftest import make_config

pytestmark = pytest.mark.anyio
TOOL_NAMES = {"search", "find_symbol", "read_span", "list_dir"}
SEARCH = ToolCall("c1", "search", {"query": "retry policy"})


def calling(*calls: ToolCall) -> ModelResponse:
    return ModelResponse(
        tool_calls=list(calls), finish_reason="tool_use", usage=Usage(input_tokens=800, output_tokens=40)
    )


def tool_results(request) -> list:
    return [m for m in request.messages if m.role == "tool"]


def search_server(repo, tmp_path, monkeypatch, model):
    """A real search server whose `search` role routes to the scripted model; its ledger."""
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    server = create_server(root=repo)
    config = make_config(search=["google:gemini-3-flash-preview"])
    return server, wire_fake_models(server, model, config=config, state=tmp_path)


async def deep(server, query="how are retries applied?") -> dict:
    async with Client(server) as client:
        result = await client.call_tool("search_codebase", {"query": query, "mode": "deep"})
    assert not result.is_error, result.content
    return result.structured_content


async def test_a_repeated_call_is_not_run_and_the_next_turn_must_answer(repo, tmp_path, monkeypatch):
    def reply(request, model):
        turn = len(model.requests)
        if turn == 1:
            return calling(SEARCH, ToolCall("c2", "find_symbol", {"name": "apply_retry_policy"}))
        if turn == 2:
            return calling(ToolCall("c3", "search", {"query": "retry policy"}))  # the same call again
        return ModelResponse(text="Retries are applied in src/app/router.py:13.", usage=Usage(900, 0, 0, 30, 0))

    model = FunctionModel(reply, model_name="gemini-3-flash-preview")
    server, ledger = search_server(repo, tmp_path, monkeypatch, model)
    data = await deep(server)

    assert data["mode"] == "deep"
    assert data["answer"] == "Retries are applied in src/app/router.py:13."
    assert data["deep"] == {"turns": 3, "tool_calls": 2, "model": "google:gemini-3-flash-preview"}
    assert data["notes"][-1] == (
        'stopped the engine calls early (tool_call_loop): search({"query": "retry policy"}) was called 2 times'
    )
    first, second, forced = model.requests
    assert first.tools_allowed and second.tools_allowed
    assert not forced.tools_allowed and {t.name for t in forced.tools} == TOOL_NAMES
    repeat = tool_results(forced)[-1]
    assert repeat.tool_call_id == "c3" and repeat.is_error and repeat.text.startswith("not run")
    assert "src/app/router.py" in tool_results(forced)[0].text  # the first search did run
    ledger.flush()
    assert [r["outcome"] for r in ledger.store.rows()] == ["ok"] * 3
    ledger.close()


async def test_a_model_that_keeps_calling_after_the_loop_falls_back_to_fast_mode(repo, tmp_path, monkeypatch):
    model = FunctionModel(lambda request, model: calling(SEARCH), model_name="gemini-3-flash-preview")
    server, ledger = search_server(repo, tmp_path, monkeypatch, model)
    data = await deep(server, "retry policy")

    assert data["mode"] == "fast"
    assert "answer" not in data and "deep" not in data
    assert data["hits"][0]["path"] == "src/app/router.py"
    assert data["notes"][-1].startswith("deep mode stopped: the model kept calling tools when told to answer")
    assert 'tool_call_loop: search({"query": "retry policy"}) was called 2 times' in data["notes"][-1]
    assert len(model.requests) == 3 < MAX_TURNS  # two tool turns, then the forced answer it ignored
    assert not model.requests[-1].tools_allowed
    ledger.close()


async def test_calling_tools_past_the_last_turn_falls_back_naming_runaway_turns(repo, tmp_path, monkeypatch):
    def reply(request, model):  # a new query every turn: no loop, but no answer either
        return calling(ToolCall(f"c{len(model.requests)}", "search", {"query": f"retry {len(model.requests)}"}))

    model = FunctionModel(reply, model_name="gemini-3-flash-preview")
    server, ledger = search_server(repo, tmp_path, monkeypatch, model)
    data = await deep(server)

    assert data["mode"] == "fast"
    assert "runaway_turns: 5 turns, over the limit of 4" in data["notes"][-1]
    assert len(model.requests) == MAX_TURNS
    assert [r.tools_allowed for r in model.requests] == [True, True, True, False]
    assert {t.name for t in model.requests[-1].tools} == TOOL_NAMES
    ledger.close()


async def test_identical_calls_in_one_turn_run_once(engine):
    seen = []

    async def call_model(request):
        seen.append(request)
        if len(seen) == 1:
            return calling(SEARCH, ToolCall("c2", "search", {"query": "retry policy"}))
        return ModelResponse(text="src/app/router.py:13", model="google:m")

    search = DeepSearch(engine, call_model, limit=5, scope=None)
    answer, _, info = await search.run("retry", engine.search("retry"))
    assert answer == "src/app/router.py:13"
    assert info["tool_calls"] == 1 and info["turns"] == 2
    assert not seen[1].tools_allowed
    first, second = tool_results(seen[1])
    assert not first.is_error and second.is_error and second.text.startswith("not run")
    assert search.notes and "tool_call_loop" in search.notes[0]


async def test_a_hostile_tool_call_becomes_an_error_the_model_reads(repo, tmp_path, monkeypatch):
    """Over-long paths (ENAMETOOLONG) and a megabyte symbol name come back to the model as short errors."""
    huge = "A" * 1_000_000

    def reply(request, model):
        if len(model.requests) == 1:
            return calling(ToolCall("c1", "read_span", {"path": "x" * 5000}),
                           ToolCall("c2", "find_symbol", {"name": huge}))  # fmt: skip
        return ModelResponse(text="Nothing found.", usage=Usage(900, 0, 0, 30, 0))

    model = FunctionModel(reply, model_name="gemini-3-flash-preview")
    server, _ = search_server(repo, tmp_path, monkeypatch, model)
    data = await deep(server)

    assert data["answer"] == "Nothing found."
    errors = [m.text for m in tool_results(model.requests[1])]
    assert all(m.is_error for m in tool_results(model.requests[1]))
    assert "too long" in errors[0] and len(errors[0]) < 400
    assert "1,000,000 characters long" in errors[1] and huge[:100] not in errors[1]
