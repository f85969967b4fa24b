import json
import tomllib

import pytest

from cadre_app.cli import main
from cadre_app.install import ServerEntry, config_path, plan_install, render
from cadre_core.errors import CadreError

HOSTS = ["claude-desktop", "claude-code", "cursor", "vscode", "gemini", "copilot"]  # the JSON files; codex below


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
    assert set(data[key]) == {"other", "cadre-oracle", "cadre-librarian", "cadre-search", "cadre-vision"}
    assert data[key]["cadre-search"]["command"].endswith("cadre-search")
    backups = list(tmp_path.glob("host.json.bak-*"))
    assert len(backups) == 1 and "other-server" in backups[0].read_text()
    before = target.read_text()
    assert run(tmp_path, host, "--config-path", str(target)) == 0
    assert target.read_text() == before and "already up to date" in capsys.readouterr().out
    assert len(list(tmp_path.glob("host.json.bak-*"))) == 1


def test_each_host_gets_its_own_key_reference_syntax(tmp_path):
    entry = ServerEntry("cadre-oracle", "cadre-oracle", key_vars=("OPENAI_API_KEY",))
    # an unset ${VAR} without a default makes Claude Code drop the server: most users set one key of three
    assert render("claude-code", entry)["env"] == {"OPENAI_API_KEY": "${OPENAI_API_KEY:-}"}
    assert render("cursor", entry)["env"] == {"OPENAI_API_KEY": "${env:OPENAI_API_KEY}"}
    assert render("gemini", entry, tmp_path) == {  # Gemini strips keys from what servers inherit: named in env
        "command": "cadre-oracle",
        "args": ["--root", str(tmp_path)],
        "env": {"OPENAI_API_KEY": "${OPENAI_API_KEY}"},
    }
    assert render("copilot", entry, tmp_path) == {  # its schema's type and tools; never behind its tool search
        "type": "local", "tools": ["*"], "command": "cadre-oracle", "args": ["--root", str(tmp_path)],
        "env": {"OPENAI_API_KEY": "${OPENAI_API_KEY:-}"}, "deferTools": "never"}  # fmt: skip
    assert "deferTools" not in render("copilot", ServerEntry("someone-elses", "x"), tmp_path)
    assert render("codex", entry, tmp_path) == {  # Codex expands nothing: it forwards the variables named
        "command": "cadre-oracle", "args": ["--root", str(tmp_path)], "env_vars": ["OPENAI_API_KEY"]}  # fmt: skip
    assert render("vscode", entry, tmp_path) == {
        "type": "stdio", "command": "cadre-oracle", "args": ["--root", "${workspaceFolder}"],
        "env": {"OPENAI_API_KEY": "${input:openai-api-key}"}}  # fmt: skip
    desktop = render("claude-desktop", entry, tmp_path)  # expands nothing: no placeholder, an absolute root
    assert "env" not in desktop and desktop["args"] == ["--root", str(tmp_path)]
    code = render("claude-code", entry, tmp_path)
    assert code["args"] == ["--root", str(tmp_path)] and code["alwaysLoad"] is True  # out of the tool search
    assert not any("alwaysLoad" in render(h, entry, tmp_path) for h in HOSTS if h != "claude-code")
    foreign = render("claude-code", ServerEntry("someone-elses", "x"), tmp_path)
    assert foreign["args"] == [] and "alwaysLoad" not in foreign  # not ours: no --root, its tools stay deferred


def test_vscode_prompts_for_keys_as_passwords(tmp_path):
    plan = plan_install("vscode", [ServerEntry("cadre-search", "cadre-search")], tmp_path / ".vscode/mcp.json")
    inputs = json.loads(plan.after)["inputs"]
    assert {i["id"] for i in inputs} == {"openai-api-key", "anthropic-api-key", "gemini-api-key"}
    assert all(i["password"] is True and i["type"] == "promptString" for i in inputs)


def test_dry_run_prints_a_diff_and_writes_nothing(tmp_path, capsys):
    assert run(tmp_path, "cursor", "--dry-run", "--servers", "search") == 0
    out = capsys.readouterr().out
    assert "+++" in out and '"cadre-search"' in out and "${env:GEMINI_API_KEY}" in out and "${workspaceFolder}" in out
    assert not (tmp_path / ".cursor/mcp.json").exists()


def test_project_scope_paths(tmp_path):
    assert config_path("claude-code", "project", tmp_path) == tmp_path / ".mcp.json"
    assert config_path("cursor", "project", tmp_path) == tmp_path / ".cursor/mcp.json"
    assert config_path("vscode", "project", tmp_path) == tmp_path / ".vscode/mcp.json"
    assert config_path("claude-desktop", "user", tmp_path).name == "claude_desktop_config.json"
    assert config_path("codex", "project", tmp_path) == tmp_path / ".codex/config.toml"
    assert config_path("gemini", "project", tmp_path) == tmp_path / ".gemini/settings.json"


def test_codex_and_gemini_default_to_the_users_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    assert config_path("codex", "user", tmp_path) == tmp_path / "home/.codex/config.toml"
    assert config_path("gemini", "user", tmp_path) == tmp_path / "home/.gemini/settings.json"
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))  # Codex's own override of its folder
    assert config_path("codex", "user", tmp_path) == tmp_path / "codex/config.toml"
    (tmp_path / "proj").mkdir()
    assert main(["install", "gemini", "--root", str(tmp_path / "proj"), "--servers", "search"]) == 0
    assert "cadre-search" in json.loads((tmp_path / "home/.gemini/settings.json").read_text())["mcpServers"]
    assert main(["install", "codex", "--root", str(tmp_path / "proj"), "--servers", "search"]) == 0
    assert "[mcp_servers.cadre-search]" in (tmp_path / "codex/config.toml").read_text()
    assert main(["install", "copilot", "--root", str(tmp_path / "proj"), "--servers", "search"]) == 0
    assert "cadre-search" in json.loads((tmp_path / "home/.copilot/mcp-config.json").read_text())["mcpServers"]


def test_copilot_has_no_project_file_and_says_so(tmp_path, capsys):
    assert run(tmp_path, "copilot", "--scope", "project") == 2
    assert "Copilot CLI reads no project file of its own; use --scope user" in capsys.readouterr().err
    token = ServerEntry("team", "", url="https://mcp.example.com/mcp", header_vars={"Authorization": "TEAM_TOKEN"})
    with pytest.raises(CadreError, match="Copilot CLI expands variables only in a local server's env"):
        render("copilot", token)


CODEX_CONFIG = """# my Codex settings
model = "gpt-5"  # the one I like

[mcp_servers.other]
command = "other-server"  # not Cadre's

[mcp_servers.cadre-search]
command = "old-path"
startup_timeout_sec = 30  # mine: slow disk
"""


def test_codex_toml_is_edited_in_place_keeping_comments_and_foreign_keys(tmp_path, capsys):
    target = tmp_path / "config.toml"
    target.write_text(CODEX_CONFIG)
    assert run(tmp_path, "codex", "--config-path", str(target)) == 0
    text = target.read_text()
    assert text.startswith(CODEX_CONFIG.split("[mcp_servers.cadre-search]")[0])  # untouched up to our table
    assert "startup_timeout_sec = 30  # mine: slow disk" in text and 'command = "other-server"  # not Cadre\'s' in text
    servers = tomllib.loads(text)["mcp_servers"]
    assert set(servers) == {"other", "cadre-search", "cadre-oracle", "cadre-librarian", "cadre-vision"}
    assert servers["cadre-search"]["command"].endswith("cadre-search")
    assert servers["cadre-search"]["args"] == ["--root", str(tmp_path)]
    assert servers["cadre-oracle"]["env_vars"] == ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"]
    assert "env" not in servers["cadre-oracle"]  # no key value, no placeholder: Codex would pass it literally
    backups = list(tmp_path.glob("config.toml.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == CODEX_CONFIG
    assert run(tmp_path, "codex", "--config-path", str(target)) == 0
    assert target.read_text() == text and "already up to date" in capsys.readouterr().out
    assert len(list(tmp_path.glob("config.toml.bak-*"))) == 1


def test_codex_dry_run_prints_a_toml_diff_and_writes_nothing(tmp_path, capsys):
    target = tmp_path / "config.toml"
    assert run(tmp_path, "codex", "--dry-run", "--servers", "search", "--config-path", str(target)) == 0
    out = capsys.readouterr().out
    assert "+[mcp_servers.cadre-search]" in out and '+env_vars = ["OPENAI_API_KEY"' in out
    assert not target.exists()


def test_codex_remote_entries_take_the_token_from_an_env_var():
    entry = ServerEntry("team", "", url="https://mcp.example.com/mcp", header_vars={"Authorization": "TEAM_TOKEN"})
    assert render("codex", entry) == {"url": "https://mcp.example.com/mcp", "bearer_token_env_var": "TEAM_TOKEN"}
    assert render("gemini", entry) == {
        "httpUrl": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${TEAM_TOKEN}"}}  # fmt: skip
    odd = ServerEntry("team", "", url="https://mcp.example.com/mcp", header_vars={"X-Api-Key": "TEAM_TOKEN"})
    with pytest.raises(CadreError, match="sends X-Api-Key as a Bearer header, which Codex cannot write"):
        render("codex", odd)


@pytest.mark.parametrize("text", ["model = ", "mcp_servers = 3"])
def test_a_corrupt_codex_file_is_reported_and_left_untouched(tmp_path, capsys, text):
    target = tmp_path / "config.toml"
    target.write_text(text)
    assert run(tmp_path, "codex", "--config-path", str(target)) == 2
    assert "left untouched" in capsys.readouterr().err
    assert target.read_text() == text


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


def test_project_scope_writes_into_the_named_project_and_says_where(tmp_path, capsys, monkeypatch):
    project, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["install", "claude-code", "--root", str(project)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"wrote {project / '.mcp.json'} (claude-code, project scope, workspace {project})"
    )
    assert not (elsewhere / ".mcp.json").exists()
    entry = json.loads((project / ".mcp.json").read_text())["mcpServers"]["cadre-search"]
    assert entry["args"] == ["--root", str(project)]
    monkeypatch.chdir(project)  # the default project is the folder you run it from
    assert main(["install", "claude-code"]) == 0
    assert "already up to date (claude-code, project scope" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["checkout", "home", "missing"])
def test_install_refuses_a_root_that_is_not_a_users_project(tmp_path, capsys, monkeypatch, where):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    checkout = tmp_path / "cadre"
    (checkout / "shared/src/cadre_core").mkdir(parents=True)
    (checkout / "shared/src/cadre_core/__init__.py").write_text("")
    root = {"checkout": checkout, "home": tmp_path / "home", "missing": tmp_path / "nope"}[where]
    assert main(["install", "cursor", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    expected = {
        "checkout": "is Cadre's own checkout; run `cadre install` from your project's folder",
        "home": "is not a project: the servers would read all of it",
        "missing": "is not a folder",
    }[where]
    assert expected in err
    assert not (root / ".cursor").exists()


def test_claude_desktop_says_where_its_keys_go(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home/.config"))
    (tmp_path / "proj").mkdir()
    assert main(["install", "claude-desktop", "--root", str(tmp_path / "proj")]) == 0
    err = capsys.readouterr().err
    assert f"put them in {tmp_path / 'home/.config/cadre/keys.env'}" in err
    desktop = tmp_path / "home/.config/Claude/claude_desktop_config.json"
    assert "${" not in desktop.read_text()


def test_an_editor_user_scope_names_no_folder_so_any_cwd_will_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # the home folder: refused where the file would name it
    assert main(["install", "cursor", "--scope", "user"]) == 0
    entry = json.loads((tmp_path / ".cursor/mcp.json").read_text())["mcpServers"]["cadre-search"]
    assert entry["args"] == ["--root", "${workspaceFolder}"]
    assert main(["install", "claude-code", "--scope", "user"]) == 2
    assert "is not a project" in capsys.readouterr().err
