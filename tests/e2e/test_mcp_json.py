"""Every server entry in the repo's mcp.json starts exactly as written and answers a real client."""

import json
import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio
ENTRIES = json.loads((Path(__file__).parents[2] / "mcp.json").read_text())["mcpServers"]


def test_mcp_json_holds_no_secrets():
    for entry in ENTRIES.values():
        assert all(value.startswith("${") and value.endswith("}") for value in entry["env"].values())


@pytest.mark.parametrize("name", sorted(ENTRIES))
async def test_each_entry_spawns_and_lists_its_tools(name, tmp_path, tmp_path_factory):
    entry = ENTRIES[name]
    bin_dir = str(Path(sys.executable).parent)  # the console scripts live beside the interpreter
    home = tmp_path_factory.mktemp("home")  # beside the workspace: a workspace never holds the home folder
    env = {**entry["env"], "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(home),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path / "data")}  # fmt: skip
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=env, cwd=str(tmp_path))
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        assert client.server_info.name == name
        if name == "cadre-search":
            (tmp_path / "a.py").write_text("def alpha():\n    return 1\n")
            result = await client.call_tool("search_codebase", {"query": "alpha"})
            assert result.structured_content["hits"][0]["path"] == "a.py"
        if name == "cadre-oracle":  # placeholders are not keys: the error names the real fix
            result = await client.call_tool("consult_oracle", {"question": "q"})
            assert result.is_error and "OPENAI_API_KEY" in result.content[0].text
    assert name != "cadre-search" or [t.name for t in tools] == ["search_codebase", "find_symbol"]
