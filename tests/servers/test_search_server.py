"""The search server through a real MCP client (in memory and over stdio)."""

import json
import subprocess
import sys

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from cadre_core.models.base import ModelResponse, ToolCall, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.testing import wire_fake_models
from cadre_search.server import create_server
from tests.core.conftest import make_config
from tests.servers.conftest import make_repo

pytestmark = pytest.mark.anyio


def token_estimate(tools) -> int:
    blob = json.dumps([t.model_dump(mode="json", exclude_none=True, by_alias=True) for t in tools])
    return len(blob) // 4


async def test_tools_list_is_small_and_schemas_are_valid(repo):
    from jsonschema import Draft202012Validator

    async with Client(create_server(root=repo)) as client:
        tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == ["search_codebase", "find_symbol"]
    assert token_estimate(tools) <= 600
    for tool in tools:
        Draft202012Validator.check_schema(tool.input_schema)
        Draft202012Validator.check_schema(tool.output_schema)


async def test_search_codebase_returns_ranked_hits_with_index_info(repo):
    async with Client(create_server(root=repo)) as client:
        result = await client.call_tool("search_codebase", {"query": "where is the retry policy applied", "limit": 3})
        symbol = await client.call_tool("find_symbol", {"name": "HttpClient.fetchJson"})
        bad = await client.call_tool("search_codebase", {"query": "   "})
        outside = await client.call_tool("search_codebase", {"query": "retry", "path": "/etc"})
    data = result.structured_content
    assert data["hits"][0]["path"] == "src/app/router.py"
    assert set(data["hits"][0]) >= {"path", "start_line", "end_line", "symbol", "snippet", "score", "why"}
    assert data["index"]["files"] == 7
    assert data["took_ms"] >= 0
    assert symbol.structured_content["definitions"][0]["path"] == "src/app/http_client.py"
    assert bad.is_error and "query is empty" in bad.content[0].text
    assert outside.is_error and "outside the workspace roots" in outside.content[0].text


async def test_host_roots_choose_the_root(tmp_path):
    one = make_repo(tmp_path / "one", {"alpha.py": "def alpha_only():\n    pass\n"})
    two = make_repo(tmp_path / "two", {"beta.py": "def beta_only():\n    pass\n"})

    async def roots(ctx):
        return types.ListRootsResult(roots=[types.Root(uri=two.as_uri())])

    async with Client(create_server(root=one), list_roots_callback=roots) as client:
        result = await client.call_tool("search_codebase", {"query": "beta_only alpha_only"})
    assert [h["path"] for h in result.structured_content["hits"]] == ["beta.py"]


async def test_progress_is_reported_while_the_first_index_is_built(tmp_path):
    files = {f"pkg/m{i}.py": f"def function_{i}():\n    return {i}\n" for i in range(450)}
    root = make_repo(tmp_path / "big", files)
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with Client(create_server(root=root)) as client:
        result = await client.call_tool("search_codebase", {"query": "function_7"}, progress_callback=on_progress)
    assert result.structured_content["hits"][0]["path"] == "pkg/m7.py"
    assert seen and seen[-1][0] == seen[-1][1] == 450
    assert "indexing" in seen[0][2]


def scripted_search_model():
    """Turn 1: four parallel engine calls. Turn 2: the answer."""

    def answer(request, model):
        if len(request.messages) == 1:
            assert {t.name for t in request.tools} == {"search", "find_symbol", "read_span", "list_dir"}
            calls = [
                ToolCall("c1", "search", {"query": "retry policy"}),
                ToolCall("c2", "find_symbol", {"name": "apply_retry_policy"}),
                ToolCall("c3", "read_span", {"path": "src/app/router.py", "start_line": 13, "end_line": 19}),
                ToolCall("c4", "list_dir", {"path": "src"}),
            ]
            return ModelResponse(
                tool_calls=calls, finish_reason="tool_use", usage=Usage(input_tokens=900, output_tokens=60)
            )
        results = {m.tool_call_id: m.text for m in request.messages if m.role == "tool"}
        assert set(results) == {"c1", "c2", "c3", "c4"}
        assert "for attempt in range(policy.attempts)" in results["c3"]
        return ModelResponse(
            text="The policy is applied in src/app/router.py:13 (apply_retry_policy).",
            usage=Usage(input_tokens=1500, output_tokens=40),
        )

    return FunctionModel(answer, model_name="gemini-3-flash-preview")


async def test_deep_mode_runs_parallel_engine_calls_and_answers(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    server = create_server(root=repo)
    config = make_config(search=["google:gemini-3-flash-preview"])
    ledger = wire_fake_models(server, scripted_search_model(), config=config, state=tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("search_codebase", {"query": "how are retries applied?", "mode": "deep"})
    data = result.structured_content
    assert data["mode"] == "deep"
    assert data["answer"].startswith("The policy is applied in src/app/router.py:13")
    assert data["hits"][0]["path"] == "src/app/router.py"
    assert data["deep"] == {"turns": 2, "tool_calls": 4, "model": "google:gemini-3-flash-preview"}
    ledger.flush()
    rows = ledger.store.rows()
    assert [(r["role"], r["tool"], r["outcome"]) for r in rows] == [("search", "search_codebase", "ok")] * 2
    assert all(r["cost_usd"] > 0 for r in rows)
    assert data["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows))  # both turns
    assert data["tokens"]["input"] == sum(r["input_tokens"] for r in rows)
    ledger.close()


async def test_deep_mode_without_a_model_falls_back_to_fast_and_says_so(repo):
    async with Client(create_server(root=repo)) as client:
        result = await client.call_tool("search_codebase", {"query": "retry policy", "mode": "deep"})
    data = result.structured_content
    assert not result.is_error
    assert data["mode"] == "fast"
    assert data["cost_usd"] == 0.0 and data["tokens"] == {"input": 0, "output": 0, "reasoning": 0, "cache_read": 0}
    assert data["hits"][0]["path"] == "src/app/router.py"
    assert data["notes"][-1] == (
        "no model available for deep search: set GEMINI_API_KEY, ANTHROPIC_API_KEY or OPENAI_API_KEY "
        "(`cadre doctor` shows what was found), or use a host that supports MCP sampling; returned fast-mode results"
    )


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
async def test_deep_mode_without_a_key_asks_the_host_model_from_the_hits(repo, mode):
    asked = []

    async def sampling(ctx, params):
        asked.append(params)
        text = types.TextContent(type="text", text="Retries are applied in src/app/router.py:13.")
        return types.CreateMessageResult(role="assistant", model="host-llm", stop_reason="endTurn", content=text)

    async with Client(create_server(root=repo), mode=mode, sampling_callback=sampling) as client:
        result = await client.call_tool("search_codebase", {"query": "retry policy", "mode": "deep"})
        fast = await client.call_tool("search_codebase", {"query": "retry policy"})
    data = result.structured_content
    assert not result.is_error, result.content
    assert data["mode"] == "deep" and data["answer"] == "Retries are applied in src/app/router.py:13."
    assert data["deep"] == {"turns": 1, "tool_calls": 0, "model": "host"}
    assert data["hits"][0]["path"] == "src/app/router.py"
    assert "answered by your host's model" in data["notes"][-1]
    assert len(asked) == 1  # fast mode never asks the host
    sent = asked[0].messages[0].content.text
    assert "Question:\nretry policy" in sent and "## src/app/router.py:13-19 apply_retry_policy" in sent
    assert "for attempt in range(policy.attempts)" in sent  # the snippets: the host cannot read files
    assert fast.structured_content["hits"] == data["hits"]


async def test_deep_mode_with_keys_but_a_provider_down_says_what_failed(repo, keys, tmp_path):
    from cadre_core import errors
    from cadre_core.models.test import TestModel

    server = create_server(root=repo)
    config = make_config(search=["google:gemini-3-flash-preview"])
    config.router.retries_per_candidate = 0
    down = TestModel(error=errors.OverloadedError("HTTP 503: The model is overloaded", provider="google", model="g"))
    wire_fake_models(server, down, config=config, state=tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("search_codebase", {"query": "retry policy", "mode": "deep"})
    data = result.structured_content
    assert data["mode"] == "fast" and data["hits"]
    assert "needs a model" not in data["notes"][-1]
    assert "google:gemini-3-flash-preview failed: HTTP 503: The model is overloaded" in data["notes"][-1]


@pytest.mark.slow
async def test_search_server_over_stdio(repo, tmp_path):
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "cadre_search", "--root", str(repo)], env={"XDG_CACHE_HOME": str(tmp_path)}
    )
    async with Client(params) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("search_codebase", {"query": "parse header"})
    assert result.structured_content["hits"][0]["path"] == "src/app/parser.py"


@pytest.mark.slow
def test_cli_json_contract_and_stdin(repo, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "cadre_app.cli", "search", "--root", str(repo), "--limit", "2", "--json"]
    out = subprocess.run([*cmd, "getUserName"], capture_output=True, text=True, env=env, timeout=60, check=True)
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["path"] == "src/app/http_client.py"
    assert len(hits) <= 2
    assert {"path", "start_line", "end_line", "score", "snippet"} <= set(hits[0])
    piped = subprocess.run(
        [*cmd, "-"], input="empty header name", capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert json.loads(piped.stdout)["hits"][0]["path"] == "src/app/parser.py"
    empty = subprocess.run([*cmd, ""], capture_output=True, text=True, env=env, timeout=60)
    assert empty.returncode == 2 and "query is empty" in empty.stderr
