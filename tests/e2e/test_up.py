"""`cadre up` as a real process: streamable HTTP, bearer auth off loopback, DNS-rebinding protection on it."""

import os
import socket
import subprocess
import sys
import time

import httpx2
import pytest
from mcp import Client

pytestmark = pytest.mark.anyio
TOKEN = "t0ken-" + "a" * 26
CLIENT = {"name": "t", "version": "1"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT}}  # fmt: skip
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def up(tmp_path):
    procs = []

    def start(host: str, tokens: str | None = None, servers: str = "search", extra_env: dict | None = None):
        port = free_port()
        (tmp_path / "ws").mkdir(exist_ok=True)
        (tmp_path / "ws" / "alpha.py").write_text("def alpha_function():\n    return 1\n")
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
               "XDG_DATA_HOME": str(tmp_path / "data")}  # fmt: skip
        if tokens:
            env["CADRE_TOKENS"] = tokens
        env.update(extra_env or {})
        cmd = [sys.executable, "-m", "cadre_core.cli", "--root", str(tmp_path / "ws"), "up", "--host", host,
               "--port", str(port), "--servers", servers, "--grace", "2"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return proc, port
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return proc, port
            except httpx2.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"cadre up did not start: {proc.stderr.read() if proc.poll() is not None else ''}")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stdout.close()
        proc.stderr.close()


async def test_loopback_serves_mcp_over_http_and_refuses_a_foreign_host(up):
    _, port = up("127.0.0.1")
    async with Client(f"http://127.0.0.1:{port}/search/mcp") as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("search_codebase", {"query": "alpha function"})
    assert tools == ["search_codebase", "find_symbol"]
    assert result.structured_content["hits"][0]["path"] == "alpha.py"
    rebinding = httpx2.post(f"http://127.0.0.1:{port}/search/mcp", json=INIT,
                            headers={**HEADERS, "host": "evil.example.com"})  # fmt: skip
    assert rebinding.status_code == 421


async def test_a_public_bind_requires_a_bearer_token(up):
    _, port = up("0.0.0.0", tokens=TOKEN)  # noqa: S104 - the point of the test
    url = f"http://127.0.0.1:{port}/search/mcp"
    refused = httpx2.post(url, json=INIT, headers=HEADERS)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx2.post(url, json=INIT, headers={**HEADERS, "authorization": "Bearer " + "x" * 32})
    assert wrong.status_code == 401
    ok = httpx2.post(url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert httpx2.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok", "servers": ["search"]}


def test_a_public_bind_without_tokens_does_not_start(up):
    proc, _ = up("0.0.0.0")  # noqa: S104
    assert proc.wait(timeout=30) == 2
    assert "bearer tokens are required: set CADRE_TOKENS" in proc.stderr.read()


def test_sigterm_stops_the_server_cleanly(up):
    import signal

    proc, _ = up("127.0.0.1")
    proc.terminate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status is the usual one
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Traceback" not in proc.stderr.read()


async def test_sigterm_lets_an_in_flight_call_finish(up):
    import signal
    import threading
    from http.server import ThreadingHTTPServer

    import anyio

    from tests.e2e.test_oracle_jobs_stdio import ANSWER, FakeOpenAI

    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    FakeOpenAI.calls, FakeOpenAI.delay_s, FakeOpenAI.received = [], 1.5, threading.Event()
    base_url = f"http://127.0.0.1:{fake.server_address[1]}/v1"
    proc, port = up("127.0.0.1", servers="oracle", extra_env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base_url})
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "consult_oracle", "arguments": {"question": "Why?"}}}  # fmt: skip
    headers = {**HEADERS, "mcp-protocol-version": "2025-11-25"}
    url = f"http://127.0.0.1:{port}/oracle/mcp"
    try:
        async with anyio.create_task_group() as tg:
            replies = []

            async def post() -> None:
                replies.append(await anyio.to_thread.run_sync(lambda: httpx2.post(url, json=call, headers=headers,
                                                                                    timeout=30)))  # fmt: skip

            tg.start_soon(post)
            assert await anyio.to_thread.run_sync(FakeOpenAI.received.wait, 20)
            proc.send_signal(signal.SIGTERM)  # the model is still answering
        assert replies[0].status_code == 200
        assert ANSWER["answer"] in replies[0].text  # the in-flight call finished after SIGTERM
        assert await anyio.to_thread.run_sync(lambda: proc.wait(timeout=20)) in (0, -signal.SIGTERM)
    finally:
        fake.shutdown()
