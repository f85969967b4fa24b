"""Each server as a real subprocess over stdio."""

import json
import subprocess
import sys

import pytest
from mcp import Client, StdioServerParameters

SERVERS = ["cadre_oracle", "cadre_librarian", "cadre_search", "cadre_vision"]
pytestmark = pytest.mark.anyio


def exchange(cmd: list[str], messages: list[dict], env: dict[str, str]) -> tuple[list[dict], str, str]:
    """Send JSON-RPC lines to a server on stdin; return its replies (one per request), other stdout, stderr."""
    expected = sum(1 for m in messages if "id" in m)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        replies = [json.loads(proc.stdout.readline()) for _ in range(expected)]
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        rest, err = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    return replies, rest, err


@pytest.mark.parametrize("module", SERVERS)
async def test_server_answers_over_stdio_with_a_real_client(module, tmp_path):
    params = StdioServerParameters(
        command=sys.executable, args=["-m", module, "--root", str(tmp_path)], cwd=str(tmp_path)
    )
    async with Client(params) as client:
        tools = await client.list_tools()
        assert client.server_info.name == module.replace("_", "-")
    expected = {
        "cadre_search": ["search_codebase", "find_symbol"],
        "cadre_oracle": ["consult_oracle", "oracle_result", "review_change", "second_opinions"],
        "cadre_librarian": ["research", "read_source", "find_examples", "read_result"],
        "cadre_vision": ["analyze_visual", "generate_image"],
    }[module]
    assert [t.name for t in tools.tools] == expected


@pytest.mark.parametrize("module", SERVERS)
def test_stdout_carries_only_protocol_messages(module, tmp_path):
    lines = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "no/such/method"},
    ]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONWARNINGS": "default"}
    replies, _, _ = exchange(
        [sys.executable, "-m", module, "--root", str(tmp_path), "--log-level", "DEBUG"], lines, env
    )
    assert all(r.get("jsonrpc") == "2.0" for r in replies)
    assert sorted(r["id"] for r in replies) == [1, 2, 3]
    replies.sort(key=lambda r: r["id"])
    assert "error" in replies[2]


def test_bad_root_is_refused_with_the_fix(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "cadre_oracle", "--root", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "is not a directory" in proc.stderr
    assert proc.stdout == ""


def test_servers_import_no_provider_sdk_at_start():
    code = (
        "import sys, cadre_oracle.server, cadre_librarian.server, cadre_search.server, cadre_vision.server\n"
        "for name in ('cadre_oracle', 'cadre_librarian', 'cadre_search', 'cadre_vision'):\n"
        "    sys.modules[name + '.server'].create_server()\n"
        "heavy = ('anthropic', 'openai', 'google.genai', 'genai_prices', 'pydantic_settings', 'PIL', 'pypdfium2',\n"
        "         'psycopg', 'psycopg_pool')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"


def test_stdout_stays_clean_through_tool_calls_with_debug_logging(tmp_path, tmp_path_factory):
    (tmp_path / "a.py").write_text("def alpha():\n    return 1\n")
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search_codebase",
         "arguments": {"query": "alpha", "mode": "deep"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
         "params": {"name": "find_symbol", "arguments": {"name": ""}}},
    ]  # fmt: skip
    home = tmp_path_factory.mktemp("home")  # beside the workspace: a workspace never holds the home folder
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "c")}
    cmd = [sys.executable, "-m", "cadre_search", "--root", str(tmp_path), "--log-level", "DEBUG"]
    replies, rest, err = exchange(cmd, lines, env)
    assert sorted(r["id"] for r in replies) == [1, 2, 3]
    assert all(r.get("jsonrpc") == "2.0" for r in replies)
    assert all(json.loads(line).get("jsonrpc") == "2.0" for line in rest.splitlines() if line.strip())
    by_id = {r["id"]: r for r in replies}
    assert by_id[2]["result"]["structuredContent"]["mode"] == "fast"  # no key: deep falls back, says so
    assert by_id[3]["result"]["isError"] is True
    assert "candidate skipped" in err  # the deep-mode routing logged, to stderr only
