"""The official MCP Inspector (CLI mode) lists every server's tools and calls search_codebase."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from cadre_librarian.server import create_server as librarian
from cadre_oracle.server import create_server as oracle
from cadre_search.server import create_server as search
from cadre_vision.server import create_server as vision

INSPECTOR = Path(__file__).parents[2] / ".ci/inspector/node_modules/.bin/mcp-inspector"
SERVERS = {"cadre-oracle": oracle, "cadre-librarian": librarian, "cadre-search": search, "cadre-vision": vision}
pytestmark = pytest.mark.skipif(not INSPECTOR.exists(), reason="the MCP Inspector is installed by .ci/run")


def inspect(server: str, root: Path, tmp_path: Path, *args: str) -> dict:
    script = str(Path(sys.executable).parent / server)
    done = subprocess.run(
        [str(INSPECTOR), "--cli", script, "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
        },
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("server", sorted(SERVERS))
@pytest.mark.anyio
async def test_inspector_lists_each_servers_tools(server, tmp_path):
    tools = inspect(server, tmp_path, tmp_path, "--method", "tools/list")["tools"]
    async with Client(SERVERS[server](root=tmp_path)) as client:  # what the server itself offers
        offered = sorted(t.name for t in (await client.list_tools()).tools)
    assert offered and sorted(t["name"] for t in tools) == offered
    assert all(t["inputSchema"]["type"] == "object" for t in tools)


def test_inspector_calls_search_codebase(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "billing.py").write_text("def compute_invoice_total(lines):\n    return sum(lines)\n")
    result = inspect("cadre-search", tmp_path / "ws", tmp_path, "--method", "tools/call",
                     "--tool-name", "search_codebase", "--tool-arg", "query=invoice total")  # fmt: skip
    assert result["structuredContent"]["hits"][0]["path"] == "billing.py"
    assert result["structuredContent"]["hits"][0]["symbol"] == "compute_invoice_total"
