import json

import pytest

from cadre_core.cli import main
from cadre_core.errors import CadreError
from cadre_core.install import ServerEntry, config_path, plan_install, render

HOSTS = ["claude-desktop", "claude-code", "cursor", "vscode"]


def run(tmp_path, host, *extra):
    return main(["--root", str(tmp_path), "install", host, *extra])


@pytest.mark.parametrize("host", HOSTS)
def test_install_merges_keeps_other_servers_backs_up_and_is_idempotent(tmp_path, capsys, host):
    target = tmp_path / "host.json"
    key = "servers" if host == "vscode" else "mcpServers"
    target.write_text(json.dumps({key: {"other": {"command": "other-server"}}, "theme": "dark"}))
    assert run(tmp_path, host, "--config-path", str(target)) == 0
    data = json.loads(target.read_text())
    assert data["theme"] == "dark" and data[key]["other"] == {"command": "other-server"}
    assert set(data[key]) == {"other", "cadre-oracle", "cadre-librarian", "cadre-search"}
    assert data[key]["cadre-search"]["command"].endswith("cadre-search")
    backups = list(tmp_path.glob("host.json.bak-*"))
    assert len(backups) == 1 and "other-server" in backups[0].read_text()
    before = target.read_text()
    assert run(tmp_path, host, "--config-path", str(target)) == 0
    assert target.read_text() == before and "already up to date" in capsys.readouterr().out
    assert len(list(tmp_path.glob("host.json.bak-*"))) == 1


def test_each_host_gets_its_own_key_reference_syntax():
    entry = ServerEntry("cadre-oracle", "cadre-oracle", key_vars=("OPENAI_API_KEY",))
    assert render("claude-code", entry)["env"] == {"OPENAI_API_KEY": "${OPENAI_API_KEY}"}
    assert render("cursor", entry)["env"] == {"OPENAI_API_KEY": "${env:OPENAI_API_KEY}"}
    assert render("vscode", entry) == {"type": "stdio", "command": "cadre-oracle", "args": [],
                                       "env": {"OPENAI_API_KEY": "${input:openai-api-key}"}}  # fmt: skip
    assert "env" not in render("claude-desktop", entry)


def test_vscode_prompts_for_keys_as_passwords(tmp_path):
    plan = plan_install("vscode", [ServerEntry("cadre-search", "cadre-search")], tmp_path / ".vscode/mcp.json")
    inputs = json.loads(plan.after)["inputs"]
    assert {i["id"] for i in inputs} == {"openai-api-key", "anthropic-api-key", "gemini-api-key"}
    assert all(i["password"] is True and i["type"] == "promptString" for i in inputs)


def test_dry_run_prints_a_diff_and_writes_nothing(tmp_path, capsys):
    assert run(tmp_path, "cursor", "--dry-run", "--servers", "search") == 0
    out = capsys.readouterr().out
    assert "+++" in out and '"cadre-search"' in out and "${env:GEMINI_API_KEY}" in out
    assert not (tmp_path / ".cursor/mcp.json").exists()


def test_project_scope_paths(tmp_path):
    assert config_path("claude-code", "project", tmp_path) == tmp_path / ".mcp.json"
    assert config_path("cursor", "project", tmp_path) == tmp_path / ".cursor/mcp.json"
    assert config_path("vscode", "project", tmp_path) == tmp_path / ".vscode/mcp.json"
    assert config_path("claude-desktop", "user", tmp_path).name == "claude_desktop_config.json"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"mcpServers": 3}'])
def test_a_corrupt_file_is_reported_and_left_untouched(tmp_path, capsys, text):
    target = tmp_path / ".mcp.json"
    target.write_text(text)
    assert run(tmp_path, "claude-code") == 2
    assert "left untouched" in capsys.readouterr().err
    assert target.read_text() == text


def test_literal_secrets_are_refused_unless_allowed(tmp_path):
    entry = ServerEntry("cadre-oracle", "cadre-oracle", literal_env={"OPENAI_API_KEY": "sk-live-123"})
    with pytest.raises(CadreError, match="refusing to write literal values for cadre-oracle: OPENAI_API_KEY"):
        plan_install("claude-code", [entry], tmp_path / ".mcp.json")
    plan = plan_install("claude-code", [entry], tmp_path / ".mcp.json", allow_secrets=True)
    assert json.loads(plan.after)["mcpServers"]["cadre-oracle"]["env"]["OPENAI_API_KEY"] == "sk-live-123"


def test_unknown_server_is_refused(tmp_path, capsys):
    assert run(tmp_path, "cursor", "--servers", "poet") == 2
    assert "unknown server 'poet'" in capsys.readouterr().err
