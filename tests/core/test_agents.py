"""`cadre install claude-code --agents`: subagent files Claude Code can load and an AGENTS.md block kept once."""

import pytest
import yaml
from mcp import Client

from cadre_app.agents import AGENTS, BEGIN, END
from cadre_app.cli import main
from cadre_core.servers import installed

pytestmark = pytest.mark.anyio


def frontmatter(text: str) -> dict:
    """The YAML between the leading `---` lines, as Claude Code reads it (code.claude.com/docs/en/sub-agents)."""
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def install(project, *extra):
    return main(["install", "claude-code", "--root", str(project), "--agents", *extra])


async def test_each_subagent_loads_and_names_only_tools_its_server_lists(tmp_path):
    assert install(tmp_path) == 0
    servers = {info.script: info for info in installed().values()}
    for agent in AGENTS:
        meta = frontmatter((tmp_path / f".claude/agents/{agent.server}.md").read_text())
        assert meta["name"] == agent.server and "Use proactively" in meta["description"]
        module = __import__(servers[agent.server].module, fromlist=["create_server"])
        async with Client(module.create_server(root=tmp_path)) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
        tools = [t.strip() for t in meta["tools"].split(",")]
        prefix = f"mcp__{agent.server}__"  # Claude Code's name for an MCP tool
        mcp_tools = {t.removeprefix(prefix) for t in tools if t.startswith(prefix)}
        assert mcp_tools and mcp_tools <= listed, agent.server
        assert servers[agent.server].tool in mcp_tools  # the primary tool at least
        assert set(tools) - {prefix + t for t in mcp_tools} == {"Read", "Grep", "Glob"}  # reads, never edits


def test_the_agents_md_block_is_merged_once_and_kept_current(tmp_path, capsys):
    notes = tmp_path / "AGENTS.md"
    notes.write_text("# Project rules\n\nRun the tests before committing.\n")
    assert install(tmp_path) == 0
    text = notes.read_text()
    assert text.startswith("# Project rules\n\nRun the tests before committing.\n\n" + BEGIN)
    assert text.count(BEGIN) == 1 and text.rstrip().endswith(END)
    assert "`cadre-oracle`" in text and "`cadre-librarian`" in text and "`cadre-search`" in text
    assert "Screenshots, PDFs and diagrams" in text and "`cadre-vision` (`analyze_visual`)" in text
    capsys.readouterr()
    assert install(tmp_path) == 0  # twice: nothing changes, no second backup
    assert notes.read_text() == text
    out = capsys.readouterr().out
    assert "wrote" not in out and out.count("already up to date") == 6  # .mcp.json, 4 agents, AGENTS.md
    assert len(list(tmp_path.glob("AGENTS.md.bak-*"))) == 1
    stale = text.replace("Large searches", "Old wording") + "\nMy own note after the block.\n"
    notes.write_text(stale)
    assert install(tmp_path, "--servers", "search") == 0  # the block is rewritten in place, for these servers
    now = notes.read_text()
    assert "Old wording" not in now and "Large searches" in now and "`cadre-oracle`" not in now
    assert now.endswith("My own note after the block.\n") and now.count(BEGIN) == 1


def test_agents_dry_run_writes_nothing(tmp_path, capsys):
    assert install(tmp_path, "--dry-run", "--servers", "oracle") == 0
    out = capsys.readouterr().out
    assert "+name: cadre-oracle" in out and f"+{BEGIN}" in out
    assert not (tmp_path / ".claude").exists() and not (tmp_path / "AGENTS.md").exists()


def test_agents_is_refused_for_other_hosts(tmp_path, capsys):
    assert main(["install", "cursor", "--root", str(tmp_path), "--agents"]) == 2
    assert "--agents writes Claude Code subagents; drop it for cursor" in capsys.readouterr().err
    assert not (tmp_path / ".cursor").exists()
