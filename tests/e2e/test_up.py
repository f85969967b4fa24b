"""`cadre up` as a real process: streamable HTTP, bearer auth off loopback, DNS-rebinding protection on it."""

import os
import subprocess
import sys
import time

import httpx2
import pytest
from mcp import Client

from cadre_app.testing import base_url, free_port, wait_until_healthy

pytestmark = pytest.mark.anyio
TOKEN = "t0ken-" + "a" * 26
CLIENT = {"name": "t", "version": "1"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT}}  # fmt: skip
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture
def up(tmp_path):
    procs = []

    def start(host: str, tokens: str | None = None, servers: str = "search", extra_env: dict | None = None,
              roots: list | None = None, cwd=None, port: int | None = None, args: tuple = ()):  # fmt: skip
        local = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104 - where a wildcard bind is reached
        port = port or free_port(local)
        (tmp_path / "ws").mkdir(exist_ok=True)
        (tmp_path / "ws" / "alpha.py").write_text("def alpha_function():\n    return 1\n")
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
               "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip
        if tokens:
            env["CADRE_TOKENS"] = tokens
        env.update(extra_env or {})
        roots = [tmp_path / "ws"] if roots is None else roots
        cmd = [sys.executable, "-m", "cadre_app.cli", "up", "--host", host, "--port", str(port), "--servers", servers,
               "--grace", "2", *(a for r in roots for a in ("--root", str(r))), *args]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        if wait_until_healthy(proc, base_url(local, port), timeout=30) or proc.poll() is not None:
            return proc, port
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
    assert httpx2.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}  # no server list


async def test_a_hashed_tokens_file_lets_its_users_in(up, tmp_path):
    from cadre_app.tokens import hash_token

    bob = "bob-token-" + "b" * 22
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# no plain token on disk for alice\nalice:{hash_token(TOKEN)}\nbob:{bob}\n")
    _, port = up("0.0.0.0", args=("--tokens-file", str(tokens)))  # noqa: S104
    url = f"http://127.0.0.1:{port}/search/mcp"

    def init(token: str) -> int:
        return httpx2.post(url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {token}"}).status_code

    assert (init(TOKEN), init(bob)) == (200, 200)
    assert (init(hash_token(TOKEN)), init(hash_token(TOKEN).removeprefix("sha256:"))) == (401, 401)


async def test_a_jwt_from_the_configured_identity_provider_signs_in(up, tmp_path):

    from mcp.client.streamable_http import streamable_http_client

    from tests.jwks import AUDIENCE, ISSUER, JWKSServer, claims, rsa_key, sign

    key = rsa_key("k1")
    idp = JWKSServer([key]).start()
    config = tmp_path / "team.toml"
    config.write_text(f'[up.auth]\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\njwks_url = "{idp.url}"\n')
    try:
        _, port = up("0.0.0.0", extra_env={"CADRE_CONFIG": str(config)})  # noqa: S104 - JWTs only, no tokens
        url = f"http://127.0.0.1:{port}/search/mcp"
        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {sign(key, claims('alice'))}"})
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            result = await client.call_tool("search_codebase", {"query": "alpha function"})
        assert result.structured_content["hits"][0]["path"] == "alpha.py"
        expired = sign(key, claims("alice", exp=int(time.time()) - 600))
        refused = httpx2.post(url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {expired}"})
        metadata_url = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/search/mcp"
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == (
            f'Bearer realm="cadre", resource_metadata="{metadata_url}", error="invalid_token", '
            'error_description="the token has expired"'
        )
        metadata = httpx2.get(metadata_url).json()
        assert (metadata["resource"], metadata["authorization_servers"]) == (url, [ISSUER])
    finally:
        idp.stop()


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


def git_checkout(path, origin: str | None = None):
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if origin:  # recorded only: nothing is fetched
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", origin], check=True)
    return path


class Roots:
    """A client's roots/list answer, changed between calls (a remote client sends what it likes)."""

    def __init__(self):
        self.uris: list[str] = []

    async def __call__(self, ctx):
        import mcp_types as types

        return types.ListRootsResult(roots=[types.Root(uri=u) for u in self.uris])


async def test_client_roots_only_select_among_the_served_workspaces(up, tmp_path):
    alpha = git_checkout(tmp_path / "srv" / "alpha")
    (alpha / "alpha.py").write_text("def alpha_function():\n    return 1\n")
    gamma = git_checkout(tmp_path / "srv" / "checkout-7", "https://github.com/acme/gamma.git")
    (gamma / "gamma.py").write_text("def gamma_function():\n    return 3\n")
    secret = tmp_path / "secret"  # exists on the server, but is no workspace
    secret.mkdir()
    (secret / "keys.py").write_text("def private_marker_function():\n    return 'x'\n")
    _, port = up("127.0.0.1", roots=[alpha, gamma])
    roots = Roots()

    async def search(query: str, **args):
        return await client.call_tool("search_codebase", {"query": query, **args})

    async with Client(f"http://127.0.0.1:{port}/search/mcp", list_roots_callback=roots) as client:
        roots.uris = ["file:///home/alice/gamma"]  # a laptop path: the name of the checkout's origin repository
        found = await search("gamma function")
        roots.uris = ["file:///home/alice/alpha", "file:///etc"]  # a folder name; /etc adds nothing
        passwd = await search("root nologin bash daemon")
        outside = await search("anything", path="/etc/passwd")
        roots.uris = ["file:///etc"]
        etc_only = await search("root nologin bash daemon")
        roots.uris = [secret.as_uri()]
        secret_only = await search("private marker function")
    assert [h["path"] for h in found.structured_content["hits"]] == ["gamma.py"]
    assert not passwd.is_error and all(h["path"] == "alpha.py" for h in passwd.structured_content["hits"])
    assert outside.is_error and "outside the workspace roots" in outside.content[0].text
    for refused in (etc_only, secret_only):
        assert refused.is_error
        assert "match none of this server's workspaces (alpha, checkout-7)" in refused.content[0].text
    # nothing outside the two workspaces was ever indexed
    indexed = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert b"private_marker_function" not in indexed and b"root:x:0:0" not in indexed
    assert b"gamma_function" in indexed
    # before MCP 2026-07-28 a stateless server cannot ask for roots, so the choice is the user's to make
    async with Client(f"http://127.0.0.1:{port}/search/mcp", list_roots_callback=roots, mode="legacy") as client:
        legacy = await client.call_tool("search_codebase", {"query": "gamma function"})
    assert legacy.is_error and "sent no roots (over HTTP they come only with MCP 2026-07-28)" in legacy.content[0].text


async def test_one_workspace_answers_a_client_whose_roots_match_nothing(up, tmp_path):
    _, port = up("127.0.0.1")
    roots = Roots()
    roots.uris = ["file:///etc", "file:///"]
    async with Client(f"http://127.0.0.1:{port}/search/mcp", list_roots_callback=roots) as client:
        result = await client.call_tool("search_codebase", {"query": "alpha function root"})
    assert [h["path"] for h in result.structured_content["hits"]] == ["alpha.py"]


@pytest.mark.parametrize("host", ["127.0.0.2", "::1"])
async def test_every_loopback_bind_checks_host_and_origin(up, host):
    _, port = up(host)
    url = f"{base_url(host, port)}/search/mcp"
    bound = base_url(host, port).removeprefix("http://")
    for good in (bound, bound.rsplit(":", 1)[0], f"localhost:{port}", "localhost"):
        ok = httpx2.post(url, json=INIT, headers={**HEADERS, "host": good})
        assert ok.status_code == 200, good
    # the SDK answers a foreign Host with 421 and a foreign Origin with 403 (mcp/server/transport_security.py)
    for evil in ("evil.example", f"evil.example:{port}"):
        assert httpx2.post(url, json=INIT, headers={**HEADERS, "host": evil}).status_code == 421
    origin = httpx2.post(url, json=INIT, headers={**HEADERS, "origin": "http://evil.example"})
    assert origin.status_code == 403
    health = httpx2.get(f"{base_url(host, port)}/healthz")
    assert health.json() == {"status": "ok"}


def test_a_busy_port_gives_one_clear_error_and_no_banner(up):
    first, port = up("127.0.0.1")
    assert first.poll() is None
    second, _ = up("127.0.0.1", port=port)
    assert second.wait(timeout=30) == 2
    err = second.stderr.read()
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--port N" in err
    assert "http://" not in err and "Traceback" not in err


def test_up_refuses_to_serve_the_home_folder(up, tmp_path):
    proc, _ = up("127.0.0.1", roots=[], cwd=tmp_path)  # HOME is tmp_path in the fixture
    assert proc.wait(timeout=30) == 2
    err = proc.stderr.read()
    assert f"the workspace would be {tmp_path.resolve()} (your home folder)" in err
    assert "cadre up --root DIR" in err
