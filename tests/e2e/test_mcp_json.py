"""Every server entry in the repo's mcp.json starts as Claude Code starts it and answers a real client."""

import json
import sys
from pathlib import Path

import pytest
from mcp import Client

from cadre_core.servers import installed
from tests.e2e.test_hosts import HOSTS, Launch, roots_callback, spawn

pytestmark = pytest.mark.anyio
ENTRIES = json.loads((Path(__file__).parents[2] / "mcp.json").read_text())["mcpServers"]


def test_mcp_json_holds_no_secrets_and_only_placeholders_claude_code_keeps():
    for entry in ENTRIES.values():  # `${VAR:-}`: an unset key must not make Claude Code drop the server
        assert all(value.startswith("${") and value.endswith(":-}") for value in entry["env"].values())


@pytest.mark.parametrize("name", sorted(ENTRIES))
async def test_each_entry_spawns_and_lists_its_tools(name, tmp_path):
    host, project = HOSTS["claude-code"], tmp_path / "proj"
    project.mkdir()
    bin_dir = str(Path(sys.executable).parent)  # the console scripts live beside the interpreter
    launch = Launch({"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}, project, tmp_path)
    params = spawn(host, ENTRIES[name], launch)
    async with Client(params, mode="legacy", list_roots_callback=roots_callback(host, launch)) as client:
        tools = (await client.list_tools()).tools
        assert client.server_info.name == name
        if name == "cadre-search":
            (project / "a.py").write_text("def alpha():\n    return 1\n")
            result = await client.call_tool("search_codebase", {"query": "alpha"})
            assert result.structured_content["hits"][0]["path"] == "a.py"
        if name == "cadre-oracle":  # an empty key is no key: the error names the real fix
            result = await client.call_tool("consult_oracle", {"question": "q"})
            assert result.is_error and "OPENAI_API_KEY" in result.content[0].text
    assert name != "cadre-search" or [t.name for t in tools] == ["search_codebase", "find_symbol"]


def test_mcp_json_lists_every_server_with_its_keys():
    """The tests above loop over mcp.json's entries and env: an emptied file would pass them. The servers are the
    installed ones (entry points `cadre.servers`), each started by its console script."""
    scripts = sorted(server.script for server in installed().values())
    assert sorted(ENTRIES) == scripts == ["cadre-librarian", "cadre-oracle", "cadre-search", "cadre-vision"]
    for name, entry in ENTRIES.items():
        assert entry["command"] == name
        assert set(entry["env"]) == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"}
