"""The oracle's structured tools on a local OpenAI-compatible server, through a real in-memory MCP client:
the issue's llama-cpp-python case (every structured call failed with HTTP 500) and a server without tool
calling. The servers are the loopback fakes of tests/core/test_local_endpoints.py."""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import Client

from cadre_core.config import ProviderConfig
from cadre_core.models import build_model, endpoints
from cadre_core.testing import mock_http_client, wire_fake_models
from cadre_oracle.server import create_server
from tests.core.conftest import make_config
from tests.core.test_local_endpoints import RAW_ANSWER, FakeServer, llama_cpp_python, vllm_without_auto_tool_choice
from tests.servers.conftest import make_repo

pytestmark = pytest.mark.anyio
MODEL = "openai_compatible:smollm2"


@pytest.fixture(autouse=True)
def _fresh_memory():
    endpoints.forget()
    yield
    endpoints.forget()


def local_oracle(root, fake: FakeServer, tmp_path, role: str):
    """A real oracle server whose only route is `MODEL` at a loopback fake, built as config builds it."""
    server = create_server(root=root)
    config = make_config(**{role: [MODEL]})
    config.providers["openai_compatible"] = ProviderConfig(base_url="http://127.0.0.1:8000/v1", key_required=False)
    client = mock_http_client(fake)

    def factory(candidate, cfg):
        return build_model(candidate.model, cfg.providers["openai_compatible"], http_client=client)

    wire_fake_models(server, factory, config=config, state=tmp_path)
    return server


async def git_repo(tmp_path):
    root = make_repo(tmp_path / "ws", {"a.py": "def main():\n    return 1\n"})
    git = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        await anyio.run_process([*git, *args])
    (root / "a.py").write_text("def main():\n    return eval(input())\n")
    return root


async def test_review_change_answers_on_llama_cpp_python(tmp_path):
    fake = FakeServer(llama_cpp_python, RAW_ANSWER, RAW_ANSWER)
    server = local_oracle(await git_repo(tmp_path), fake, tmp_path, "review")

    async with Client(server) as client:
        first = await client.call_tool("review_change", {})
        second = await client.call_tool("review_change", {})

    assert not first.is_error, first.content
    [finding] = first.structured_content["findings"]
    assert finding["title"] == "Typo" and first.structured_content["summary"] == "One issue.\nSee below."
    assert not second.is_error
    # json_schema refused once, then json_object (with the schema) for both calls.
    assert [b["response_format"]["type"] for b in fake.bodies] == ["json_schema", "json_object", "json_object"]


async def test_consult_reads_through_the_text_tool_protocol_when_the_server_has_no_tool_calling(tmp_path):
    answer = {"answer": "main evaluates its input.", "key_points": [], "risks": ["eval"], "next_steps": [],
              "confidence": "medium", "citations": [{"path": "a.py", "start_line": 1, "end_line": 2}]}  # fmt: skip
    block = json.dumps({"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}]})
    fake = FakeServer(vllm_without_auto_tool_choice, block, json.dumps(answer))
    server = local_oracle(await git_repo(tmp_path), fake, tmp_path, "oracle")

    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "What does main do?"})

    assert not result.is_error, result.content
    assert result.structured_content["answer"] == "main evaluates its input."
    assert ["tools" in b for b in fake.bodies] == [True, False, False]
    tool_result = fake.bodies[2]["messages"][-1]
    assert tool_result["role"] == "user" and "return eval(input())" in tool_result["content"]
