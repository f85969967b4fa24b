"""Real server processes over stdio, where the leaks were seen: the oracle against a loopback fake OpenAI
Responses API whose scripted model greps for key bodies and reads secret files, and search's fast
snippets. Nothing of a secret may reach the fake provider's request log or a tool result; a FIFO in the
workspace hangs nothing."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.e2e.loopback import send_json, serving
from tests.secret_corpus import config_yaml, corpus, leaks, notes_md, secret_files

pytestmark = pytest.mark.anyio
FOUND = corpus()
ANSWER = {"answer": "Done.", "key_points": [], "risks": [], "next_steps": [], "confidence": "low", "citations": []}
HOSTILE_CALLS = [
    ("grep", {"pattern": r"^[A-Za-z0-9+/]{16,}={0,2}$"}),
    ("grep", {"pattern": "PASSWORD|password|token|secret|key"}),
    ("read_file", {"path": "notes.md", "start_line": 60, "end_line": 120}),
    ("read_file", {"path": "notes.md"}),
    ("read_file", {"path": ".env"}),
    ("read_file", {"path": "id_rsa"}),
    ("read_file", {"path": "pipe.md"}),
]


class FakeOpenAI(BaseHTTPRequestHandler):
    """The Responses API as the openai SDK reads it: first turn asks for tools, then answers."""

    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeOpenAI.bodies.append(body)
        answered = any(item.get("type") == "function_call_output" for item in body["input"])
        if answered or not body.get("tools"):
            text = {"type": "output_text", "text": json.dumps(ANSWER), "annotations": []}
            output = [{"type": "message", "id": "m1", "role": "assistant", "status": "completed", "content": [text]}]
        else:
            output = [{"type": "function_call", "id": f"fc{i}", "call_id": f"call{i}", "name": name,
                       "arguments": json.dumps(args), "status": "completed"}
                      for i, (name, args) in enumerate(HOSTILE_CALLS)]  # fmt: skip
        send_json(self, {
            "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": body["model"],
            "error": None, "incomplete_details": None, "output": output,
            "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 110},
        })  # fmt: skip

    def log_message(self, *args):
        return


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    files = {"notes.md": notes_md(FOUND), "config.yaml": config_yaml(FOUND), **secret_files(FOUND)}
    for rel, text in files.items():
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws / rel).write_text(text)
    os.mkfifo(ws / "pipe.md")
    return ws


def environment(tmp_path, **extra) -> dict[str, str]:
    xdg = {f"XDG_{kind.upper()}_HOME": str(tmp_path / kind) for kind in ("data", "config", "cache")}
    return {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", **xdg, **extra}


async def test_the_oracle_process_sends_no_secret_to_the_provider(workspace, tmp_path):
    FakeOpenAI.bodies = []
    with serving(FakeOpenAI) as url:
        env = environment(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=url)
        params = StdioServerParameters(command=sys.executable, args=["-m", "cadre_oracle", "--root", str(workspace)],
                                       env=env)  # fmt: skip
        with anyio.fail_after(60):
            async with Client(params) as client:
                result = await client.call_tool("consult_oracle", {"question": "q", "files": ["**/*", ".env"]})
    assert not result.is_error, result.content
    sent = json.dumps(FakeOpenAI.bodies)
    outputs = [i["output"] for b in FakeOpenAI.bodies for i in b["input"] if i.get("type") == "function_call_output"]
    assert len(outputs) == len(HOSTILE_CALLS)  # every hostile call ran and its result went to the provider
    assert "Ordinary text the tools must still show." in sent
    assert "secret file" in outputs[4] and "secret file" in outputs[5] and "not a file" in outputs[6]
    assert not leaks(FOUND, sent)
    assert not leaks(FOUND, json.dumps(result.structured_content))


async def test_search_snippets_from_a_server_process_hold_no_secret(workspace, tmp_path):
    params = StdioServerParameters(command=sys.executable, args=["-m", "cadre_search", "--root", str(workspace)],
                                   env=environment(tmp_path))  # fmt: skip
    returned = []
    with anyio.fail_after(60):
        async with Client(params) as client:
            for query in ("BEGIN PRIVATE KEY", "DB_PASSWORD secret token", "Body of pem", "aws_secret_access_key"):
                result = await client.call_tool("search_codebase", {"query": query, "limit": 50})
                assert not result.is_error, result.content
                returned.append(json.dumps(result.structured_content))
            returned.append(
                json.dumps((await client.call_tool("find_symbol", {"name": "password"})).structured_content)
            )
    hits = json.loads(returned[0])["hits"]
    assert "notes.md" in {h["path"] for h in hits} and "[REDACTED" in returned[0]
    assert not {".env", "id_rsa", "gcp-demo-3f9a.json", "deploy_key", "pipe.md"} & {h["path"] for h in hits}
    assert not leaks(FOUND, "\n".join(returned))
