"""The librarian as a real process over stdio: real OpenAI SDK against a loopback fake Responses API,
a fixture virtualenv, no network."""

import json
import re
import sys
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest
from mcp import Client, StdioServerParameters

from tests.e2e.loopback import send_json, serving
from tests.servers.librarian_env import RETRY_PY, make_env

pytestmark = pytest.mark.anyio
USAGE = {"input_tokens": 900, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 60,
         "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 960}  # fmt: skip


def response(body: dict, item: dict) -> dict:
    return {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": body["model"],
            "error": None, "incomplete_details": None, "output": [item], "usage": USAGE}  # fmt: skip


class FakeResponses(BaseHTTPRequestHandler):
    """Turn 1 reads fakelib/retry.py; turn 2 answers citing the line it read."""

    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeResponses.bodies.append(body)
        if len(FakeResponses.bodies) == 1:
            item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "read_installed",
                    "arguments": json.dumps({"package": "fakelib", "path": "fakelib/retry.py"}),
                    "status": "completed"}  # fmt: skip
        else:
            seen = json.dumps(body["input"])
            eid = re.search(r"(E\d+) \[local\] fakelib@1\.2\.0 fakelib/retry\.py:1-", seen).group(1)
            line = RETRY_PY.split("\n").index("        return self.backoff_factor * (2 ** (attempt - 1))") + 1
            answer = {
                "answer": "Each retry waits twice as long [1].",
                "citations": [
                    {"evidence": eid, "start_line": line, "end_line": line, "quote": "self.backoff_factor * (2 **"}
                ],
            }
            item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": json.dumps(answer), "annotations": []}]}  # fmt: skip
        send_json(self, response(body, item))

    def log_message(self, *args):
        return


@pytest.fixture
def fake_openai():
    FakeResponses.bodies = []
    with serving(FakeResponses) as url:
        yield url


def params(tmp_path, ws, **extra):
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", **extra}  # fmt: skip
    return StdioServerParameters(command=sys.executable, args=["-m", "cadre_librarian", "--root", str(ws)], env=env)


async def test_research_through_the_real_sdk_cites_the_installed_source(tmp_path, fake_openai):
    ws = make_env(tmp_path / "ws")
    async with Client(params(tmp_path, ws, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake_openai)) as client:
        result = await client.call_tool(
            "research", {"question": "How does fakelib back off?", "libraries": ["fakelib"]}
        )
    assert not result.is_error, result.content[0].text
    data = result.structured_content
    assert len(FakeResponses.bodies) == 2
    assert {t["name"] for t in FakeResponses.bodies[0]["tools"]} >= {"search_installed", "github_read", "fetch_page"}
    (cite,) = data["citations"]
    path = ws / ".venv/lib/python3.11/site-packages/fakelib/retry.py"
    assert path.read_text().split("\n")[cite["start_line"] - 1].strip().startswith("return self.backoff_factor")
    assert cite["url"] == f"{path.resolve().as_uri()}#L{cite['start_line']}-L{cite['end_line']}"
    assert data["model"].startswith("openai:") and data["cost_usd"] > 0


async def test_read_source_and_find_examples_without_any_key(tmp_path):
    ws = make_env(tmp_path / "ws")
    async with Client(params(tmp_path, ws)) as client:
        read = await client.call_tool("read_source", {"target": "left-pad", "path": "index.js", "end_line": 1})
        found = await client.call_tool("find_examples", {"symbol_or_snippet": "retry_call(", "language": "python"})
        research = await client.call_tool("research", {"question": "How does fakelib retry?"})
    assert read.structured_content["text"] == "1  module.exports = function leftPad(str, len, ch) {"
    assert read.structured_content["version_or_ref"] == "1.3.0"
    assert sorted(e["path"] for e in found.structured_content["examples"]) == ["fakelib/client.py", "fakelib/retry.py"]
    evidence = research.structured_content
    assert evidence["answer"] is None and evidence["evidence"][0]["package_or_repo"] == "fakelib"


async def test_a_large_result_pages_through_resource_links_over_stdio(tmp_path):
    from mcp.shared.exceptions import MCPError
    from mcp_types import ResourceLink

    ws = make_env(tmp_path / "ws")
    lines = "".join(f"VALUE_{i} = {i * 7919}  # {'padding ' * 6}\n" for i in range(300))  # ~22k characters
    (ws / ".venv/lib/python3.11/site-packages/fakelib/client.py").write_text(lines)
    async with Client(params(tmp_path, ws, CADRE_SERVER__MAX_RESULT_TOKENS="1000")) as client:
        templates = await client.list_resource_templates()
        result = await client.call_tool("read_source", {"target": "fakelib", "path": "fakelib/client.py"})
        links = [b for b in result.content if isinstance(b, ResourceLink)]
        first = result.content[0].text
        pages = [first[: first.index("\n\n[Cadre: this result is")]]
        pages += [(await client.read_resource(str(link.uri))).contents[0].text for link in links]
        rid = result.structured_content["paged"]["id"]
        by_tool = await client.call_tool("read_result", {"id": rid, "page": 2})  # for hosts that skip links
        with pytest.raises(MCPError, match="no stored result 'gone'"):
            await client.read_resource("cadre://results/gone?page=2")
    assert [t.uri_template for t in templates.resource_templates] == ["cadre://results/{id}{?page}"]
    assert len(links) >= 5 and all(len(p) <= 1000 * 3.5 for p in pages)
    assert result.structured_content["paged"]["pages"] == len(links) + 1
    assert f"(or call read_result with id '{rid}' and page 2 to {len(links) + 1})" in first
    assert not by_tool.is_error and by_tool.content[0].text == pages[1] and by_tool.structured_content is None
    assert json.loads("".join(pages))["text"].splitlines()[-1] == f"300  VALUE_299 = {299 * 7919}  # {'padding ' * 6}"
    assert (tmp_path / "cache" / "cadre" / "results.sqlite").exists()  # the user cache dir, not the workspace
