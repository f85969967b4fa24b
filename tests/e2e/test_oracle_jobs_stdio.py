"""wait=false against a real server process and a loopback fake OpenAI API: the job survives a restart."""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.e2e.loopback import send_json, serving

pytestmark = pytest.mark.anyio
ANSWER = {"answer": "Add the tenant to the cache key.", "key_points": ["tenant"], "risks": [], "next_steps": [],
          "confidence": "high", "citations": []}  # fmt: skip


class FakeOpenAI(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict]] = []
    delay_s = 0.0
    received = threading.Event()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeOpenAI.calls.append(body)
        FakeOpenAI.received.set()
        time.sleep(FakeOpenAI.delay_s)
        payload = {
            "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": body["model"],
            "error": None, "incomplete_details": None, "output": [
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": json.dumps(ANSWER), "annotations": []}]}],
            "usage": {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 80, "output_tokens_details": {"reasoning_tokens": 40}, "total_tokens": 1280},
        }  # fmt: skip
        send_json(self, payload)

    def log_message(self, *args):
        return


@pytest.fixture
def fake_openai():
    FakeOpenAI.calls = []
    FakeOpenAI.received = threading.Event()
    with serving(FakeOpenAI) as url:
        yield url


async def test_a_background_consult_survives_a_server_restart(tmp_path, fake_openai):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "cache.py").write_text("def cache_key(query):\n    return query\n")
    env = {
        "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai, "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
    }  # fmt: skip
    params = StdioServerParameters(command=sys.executable, args=["-m", "cadre_oracle", "--root", str(ws)], env=env)
    FakeOpenAI.delay_s = 3.0  # the first server dies while its job waits on the model
    async with Client(params) as client:
        started = await client.call_tool(
            "consult_oracle",
            {"question": "Why do tenants see each other's results?", "files": ["cache.py"], "wait": False},
        )
        job_id = started.structured_content["job_id"]
        assert await anyio.to_thread.run_sync(FakeOpenAI.received.wait, 10)
    FakeOpenAI.delay_s = 0.0
    async with Client(params) as client:  # a new server process
        with anyio.fail_after(30):
            while True:
                polled = (await client.call_tool("oracle_result", {"job_id": job_id})).structured_content
                if polled["status"] != "running":
                    break
                await anyio.sleep(0.2)
    assert polled["status"] == "done", polled
    assert polled["result"]["answer"] == ANSWER["answer"]
    assert polled["result"]["model"] == "openai:gpt-6.1-sol"
    assert polled["result"]["cost_usd"] > 0
    assert len(FakeOpenAI.calls) == 2  # the interrupted attempt, then the re-run after the restart
    assert "def cache_key(query):" in json.dumps(FakeOpenAI.calls[-1]["input"])
