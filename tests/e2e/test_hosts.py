"""Each host's launch, emulated: `cadre install HOST` into a throwaway HOME and project, then every installed
server is started the way that host starts it (working directory, environment, `${VAR}` expansion, MCP roots)
and one tool of each is called.

The environment model is the conservative one every host gives at least: the MCP SDK's default whitelist
(`get_default_environment`: HOME, PATH, USER...) taken from the host's own environment, plus the entry's `env`
after the host's expansion. Hosts that pass more only make it easier.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from unittest import mock

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment

from cadre_app.install import config_path
from tests.e2e.loopback import serving
from tests.e2e.test_oracle_jobs_stdio import ANSWER, FakeOpenAI
from tests.servers.librarian_env import make_env

pytestmark = pytest.mark.anyio
KEY = "sk-host-test"


class Dropped(Exception):
    """The host would not start this server."""


@dataclass(frozen=True)
class Launch:
    """What a host knows when it starts a server: its own environment, the open project, the user's home."""

    environ: Mapping[str, str]
    project: Path
    home: Path


def no_expansion(text: str, launch: Launch) -> str:
    return text


def claude_code_expand(text: str, launch: Launch) -> str:
    """`${VAR}` and `${VAR:-default}`; an unset variable without a default keeps the server from starting."""

    def one(match: re.Match) -> str:
        name, _, default = match.group(1).partition(":-")
        if name in launch.environ:
            return launch.environ[name]
        if ":-" in match.group(1):
            return default
        raise Dropped(f"{name} is unset and has no default")

    return re.sub(r"\$\{([^}]+)\}", one, text)


def editor_expand(text: str, launch: Launch) -> str:
    """Cursor's and VS Code's variables: `${env:NAME}` (empty when unset), `${workspaceFolder}`, `${userHome}`,
    and VS Code's `${input:id}`, which the user answers with the key they have and leaves the others empty."""
    inputs = {name.lower().replace("_", "-"): value for name, value in launch.environ.items()}

    def one(match: re.Match) -> str:
        kind, _, name = match.group(1).partition(":")
        if kind == "env":
            return launch.environ.get(name, "")
        if kind == "input":
            return inputs.get(name, "")
        return {"workspaceFolder": str(launch.project), "userHome": str(launch.home)}[kind]

    return re.sub(r"\$\{([^}]+)\}", one, text)


def gemini_expand(text: str, launch: Launch) -> str:
    """Gemini CLI's `$VAR` and `${VAR}` from its own environment; an unset variable is left as written here
    (the stricter reading: Cadre must take the text for an unset key)."""

    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return launch.environ.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, text)


@dataclass(frozen=True)
class Host:
    name: str
    cwd: Callable[[Launch], Path]
    expand: Callable[[str, Launch], str]
    sends_roots: bool
    keys_in_shell: bool
    """The user's keys are in the environment the host starts in; else in Cadre's keys.env."""


HOSTS = {
    # Claude Desktop starts servers in `/` and passes only a subset of the environment (USER, HOME, PATH)
    # plus the entry's `env`: https://modelcontextprotocol.io/docs/tools/debugging ("Working directory",
    # "Environment variables"); cwd `/` seen again in anthropics/claude-code#44764. It expands no `${VAR}`
    # and sends no MCP roots (DESIGN.md, "Host behaviours"), so the keys come from keys.env.
    "claude-desktop": Host("claude-desktop", lambda launch: Path("/"), no_expansion, False, False),
    # Claude Code expands `${VAR}` and `${VAR:-default}` in command, args and env, and a server naming an
    # unset `${VAR}` without a default does not start: https://code.claude.com/docs/en/mcp ("Environment
    # variable expansion in .mcp.json"), anthropics/claude-code#60513; the rule as coded in Claude Code's
    # services/mcp/envExpansion.ts (`process.env[name] !== undefined`, else the default, else missing).
    # It starts servers in the folder it was launched in (anthropics/claude-code#17565) and answers
    # roots/list with that folder (anthropics/claude-code#42643).
    "claude-code": Host("claude-code", lambda launch: launch.project, claude_code_expand, True, True),
    # Cursor fills `${env:NAME}`, `${userHome}` and `${workspaceFolder}` in command, args, env, url and headers,
    # and supports MCP roots: https://cursor.com/docs/mcp ("Config interpolation", "Protocol support").
    # It runs the command from the project folder (forum.cursor.com/t/what-are-the-capabilities-of-mcp-json/63130).
    "cursor": Host("cursor", lambda launch: launch.project, editor_expand, True, True),
    # VS Code resolves `${input:id}` (a password prompt) and predefined variables such as `${workspaceFolder}`:
    # https://code.visualstudio.com/docs/copilot/reference/mcp-configuration; `${env:NAME}` too
    # (microsoft/vscode#245237). It starts servers in the home folder and gives the workspace folder as MCP
    # roots (microsoft/vscode#250078).
    "vscode": Host("vscode", lambda launch: launch.home, editor_expand, True, True),
    # Codex CLI reads `[mcp_servers.<name>]` from ~/.codex/config.toml: `command`, `args`, literal `env`, and
    # `env_vars`, the variables it forwards from its own environment beside a default whitelist; TOML expands
    # nothing (developers.openai.com/codex/mcp, "STDIO servers"; docs/config.md in openai/codex). Without `cwd`
    # the server starts in Codex's working folder, the project; roots are not counted on.
    "codex": Host("codex", lambda launch: launch.project, no_expansion, False, True),
    # Gemini CLI reads `mcpServers` from ~/.gemini/settings.json, expands `$VAR`/`${VAR}` in `env`
    # (geminicli.com/docs/tools/mcp-server, "Configuration properties"; google-gemini/gemini-cli#18837) and strips
    # keys from the environment a server inherits (#17311). Without `cwd` the server starts in Gemini's working
    # folder, the project; roots are not counted on.
    "gemini": Host("gemini", lambda launch: launch.project, gemini_expand, False, True),
    # Copilot CLI reads ~/.copilot/mcp-config.json, expands `$VAR`, `${VAR}` and `${VAR:-default}` in `env` and
    # passes its safe variables (github/copilot-cli#903, 1.0.10). Its working folder and roots for a server are
    # not documented: the home folder and no roots, the hardest case.
    "copilot": Host("copilot", lambda launch: launch.home, claude_code_expand, False, True),
}
USER_FILES = ("claude-desktop", "codex", "gemini", "copilot")  # hosts whose `cadre install` writes the user's own file


class KeyedOpenAI(FakeOpenAI):
    """The loopback Responses API, also noting the key each request carried."""

    keys: ClassVar[list[str]] = []

    def do_POST(self):
        KeyedOpenAI.keys.append(self.headers.get("authorization", ""))
        super().do_POST()


@pytest.fixture
def fake_openai():
    FakeOpenAI.calls, KeyedOpenAI.keys = [], []
    with serving(KeyedOpenAI) as url:
        yield url


def spawn(host: Host, entry: dict, launch: Launch) -> StdioServerParameters:
    """The server process as `host` starts it from its config `entry`."""
    command = host.expand(entry["command"], launch)
    args = [host.expand(a, launch) for a in entry.get("args", [])]
    entry_env = {k: host.expand(v, launch) for k, v in entry.get("env", {}).items()}
    with mock.patch.dict(os.environ, launch.environ, clear=True):
        inherited = get_default_environment()  # the SDK's whitelist, read from the host's environment
    # Codex's `env_vars`: variables forwarded from the host's environment when it has them
    inherited |= {name: launch.environ[name] for name in entry.get("env_vars", []) if name in launch.environ}
    return StdioServerParameters(command=command, args=args, env=inherited | entry_env, cwd=host.cwd(launch))


def roots_callback(host: Host, launch: Launch):
    if not host.sends_roots:
        return None

    async def roots(ctx):
        return types.ListRootsResult(roots=[types.Root(uri=launch.project.as_uri(), name=launch.project.name)])

    return roots


@pytest.fixture
def machine(tmp_path, fake_openai):
    """A throwaway home with one project, a decoy file in the home folder and a loopback OpenAI."""
    home, project = tmp_path / "home", tmp_path / "home" / "work" / "proj"
    make_env(project)  # a project with a virtualenv the librarian reads
    (project / "alpha.py").write_text("def alpha_function():\n    return 1\n")
    (project / "cache.py").write_text("def cache_key(query):\n    return query\n")
    (home / "alpha_decoy.py").write_text("def alpha_function():\n    return 'not this project'\n")
    config = home / ".config" / "cadre"
    config.mkdir(parents=True)
    (config / "cadre.toml").write_text(f'[providers.openai]\nbase_url = "{fake_openai}"\n')
    environ = {"HOME": str(home), "PATH": "/usr/bin:/bin", "USER": "alice", "LOGNAME": "alice", "SHELL": "/bin/sh"}
    return Launch(environ, project, home)


def install(host: Host, launch: Launch) -> dict[str, dict]:
    """`cadre install HOST` run from the project folder; the Cadre entries of the file it wrote."""
    done = subprocess.run([sys.executable, "-m", "cadre_app.cli", "install", host.name], cwd=launch.project,
                          env=dict(launch.environ), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    scope = "user" if host.name in USER_FILES else "project"
    with mock.patch.dict(os.environ, launch.environ, clear=True):
        path = config_path(host.name, scope, launch.project)
    assert done.stdout.startswith(f"wrote {path} ")
    if host.name == "codex":
        servers = tomllib.loads(path.read_text())["mcp_servers"]
    else:
        servers = json.loads(path.read_text())["servers" if host.name == "vscode" else "mcpServers"]
    assert sorted(servers) == ["cadre-librarian", "cadre-oracle", "cadre-search", "cadre-vision"]
    assert all("--root" in entry["args"] for entry in servers.values())  # never left to the working directory
    # Claude Code loads a server's tools up front only with `alwaysLoad` on its entry, Copilot CLI only with
    # `deferTools: "never"` (codegraph#1697)
    assert all(entry.get("alwaysLoad", False) is (host.name == "claude-code") for entry in servers.values())
    assert all((entry.get("deferTools") == "never") is (host.name == "copilot") for entry in servers.values())
    return servers


@pytest.mark.parametrize("name", sorted(HOSTS))
async def test_each_installed_server_answers_when_launched_as_the_host_launches_it(name, machine, fake_openai):
    host = HOSTS[name]
    entries = install(host, machine)
    # The user has one key of three: in the shell the host starts from, or (Claude Desktop) in keys.env.
    if host.keys_in_shell:
        launch = Launch({**machine.environ, "OPENAI_API_KEY": KEY}, machine.project, machine.home)
    else:
        (machine.home / ".config/cadre/keys.env").write_text(f"OPENAI_API_KEY={KEY}\n")
        launch = machine
    results = {}
    for server, tool, arguments in [
        ("cadre-search", "search_codebase", {"query": "alpha function"}),
        ("cadre-oracle", "consult_oracle", {"question": "Why do tenants share results?", "files": ["cache.py"]}),
        ("cadre-librarian", "read_source", {"target": "fakelib", "path": "fakelib/retry.py", "end_line": 3}),
    ]:
        params = spawn(host, entries[server], launch)
        async with Client(params, mode="legacy", list_roots_callback=roots_callback(host, launch)) as client:
            result = await client.call_tool(tool, arguments)
        assert not result.is_error, (server, result.content[0].text)
        results[server] = result.structured_content
    assert [hit["path"] for hit in results["cadre-search"]["hits"]] == ["alpha.py"]  # the project, nothing else
    assert results["cadre-oracle"]["answer"] == ANSWER["answer"]
    assert KeyedOpenAI.keys == [f"Bearer {KEY}"]
    assert "Retries with exponential backoff" in json.dumps(results["cadre-librarian"])


def test_the_emulation_drops_what_claude_code_drops_and_keeps_what_it_keeps(machine):
    host = HOSTS["claude-code"]
    old = {"command": "cadre-oracle", "args": [], "env": {"GEMINI_API_KEY": "${GEMINI_API_KEY}"}}
    with pytest.raises(Dropped, match="GEMINI_API_KEY"):  # what `cadre install` wrote before
        spawn(host, old, machine)
    new = {"command": "cadre-oracle", "args": [], "env": {"GEMINI_API_KEY": "${GEMINI_API_KEY:-}"}}
    assert spawn(host, new, machine).env["GEMINI_API_KEY"] == ""
    desktop = spawn(HOSTS["claude-desktop"], old, machine)
    assert desktop.env["GEMINI_API_KEY"] == "${GEMINI_API_KEY}" and str(desktop.cwd) == "/"
    assert set(desktop.env) == {"HOME", "PATH", "USER", "LOGNAME", "SHELL", "GEMINI_API_KEY"}
