"""Add Cadre's servers to an MCP host's config file: merged, backed up, idempotent, no literal secrets."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cadre_core.errors import CadreError
from cadre_core.servers import installed, lookup

HOSTS = ("claude-desktop", "claude-code", "cursor", "vscode", "codex", "gemini", "copilot")
USER_SCOPE_HOSTS = ("claude-desktop", "codex", "gemini", "copilot")
"""Hosts installed in their user file unless `--scope project` says otherwise."""
KEY_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


@dataclass
class ServerEntry:
    """One server to install: a stdio command plus the env vars it reads its keys from."""

    name: str
    command: str
    args: list[str] = field(default_factory=list)
    key_vars: tuple[str, ...] = KEY_VARS
    literal_env: dict[str, str] = field(default_factory=dict)
    """Values a team file sets literally; refused unless `--allow-secrets`."""
    url: str | None = None
    """A remote (streamable HTTP) server instead of a command."""
    header_vars: dict[str, str] = field(default_factory=dict)
    """Remote headers whose secret part comes from an env var: header name -> var (sent as `Bearer <var>`)."""


def default_entries(servers: list[str]) -> list[ServerEntry]:
    """Entries for Cadre's own console scripts, by absolute path when installed beside this Python."""
    entries = []
    for server in servers:
        name = lookup(server).script
        script = Path(sys.executable).parent / name
        entries.append(ServerEntry(name, str(script) if script.exists() else name))
    return entries


def config_path(host: str, scope: str, root: Path) -> Path:
    """Where `host` keeps its MCP servers for `scope` (user or project)."""
    home = Path.home()
    system = platform.system()
    if host == "claude-desktop":
        if system == "Darwin":
            return home / "Library/Application Support/Claude/claude_desktop_config.json"
        if system == "Windows":
            return Path(os.environ.get("APPDATA", home)) / "Claude/claude_desktop_config.json"
        return Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "Claude/claude_desktop_config.json"
    if host == "claude-code":
        return root / ".mcp.json" if scope == "project" else home / ".claude.json"
    if host == "cursor":
        return root / ".cursor/mcp.json" if scope == "project" else home / ".cursor/mcp.json"
    if host == "codex":  # a project's .codex/config.toml is read only once the project is trusted
        return root / ".codex/config.toml" if scope == "project" else codex_home() / "config.toml"
    if host == "gemini":
        return root / ".gemini/settings.json" if scope == "project" else home / ".gemini/settings.json"
    if host == "copilot":
        if scope == "project":  # it auto-loads only the user file (github/copilot-cli#3642)
            raise CadreError("Copilot CLI reads no project file of its own; use --scope user")
        return home / ".copilot/mcp-config.json"
    if scope == "project":
        return root / ".vscode/mcp.json"
    if system == "Darwin":
        return home / "Library/Application Support/Code/User/mcp.json"
    if system == "Windows":
        return Path(os.environ.get("APPDATA", home)) / "Code/User/mcp.json"
    return Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "Code/User/mcp.json"


def codex_home() -> Path:
    """Codex CLI's folder: `$CODEX_HOME`, else `~/.codex`."""
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")


def _input_id(var: str) -> str:
    return var.lower().replace("_", "-")


def reference(host: str, var: str) -> str:
    """How `host` spells "the value of env var `var`" in its config file.

    Claude Code drops a server whose file names an unset `${VAR}` without a default, so it gets `${VAR:-}`;
    Cursor's `${env:VAR}` and VS Code's password prompt are empty when there is nothing to give. Gemini CLI
    expands `$VAR`/`${VAR}` in settings.json strings (geminicli.com/docs/cli/configuration, "Note on
    environment variables in settings") and passes a server's `env` on top of the environment it strips of
    keys (google-gemini/gemini-cli#17311, #18837); an unset one left as text counts as unset in Cadre.
    """
    if host in ("claude-code", "copilot"):  # Copilot CLI: `$VAR`, `${VAR}`, `${VAR:-default}` in `env`
        return f"${{{var}:-}}"  # since 1.0.10 (github/copilot-cli#903)
    if host == "gemini":
        return f"${{{var}}}"
    return {"cursor": f"${{env:{var}}}", "vscode": f"${{input:{_input_id(var)}}}"}[host]


def root_arg(host: str, root: Path) -> str:
    """The `--root` value for `host`: Cursor and VS Code expand `${workspaceFolder}` to the open project,
    so a shared project file stays portable; the others get the absolute path (Codex's TOML expands nothing,
    Gemini CLI only environment variables)."""
    return "${workspaceFolder}" if host in ("cursor", "vscode") else str(root)


def render(host: str, entry: ServerEntry, root: Path | None = None) -> dict[str, Any]:
    """The host's JSON for one server; keys are references the host resolves, never values.

    With `root`, a local Cadre server gets `--root`: Claude Desktop starts servers in `/` and sends no MCP roots,
    and where a host does send roots they take precedence over it.
    """
    if entry.url:
        if host == "claude-desktop":
            raise CadreError(
                f"{entry.name} is a remote server and Claude Desktop's file takes only commands; "
                "use claude-code, cursor or vscode, or add it in Desktop's connector settings"
            )
        if host == "codex":
            return _codex_remote(entry)
        if host == "copilot" and entry.header_vars:
            raise CadreError(
                f"{entry.name} needs a token header, and Copilot CLI expands variables only in a local server's "
                "env; add it with `copilot`'s /mcp add, or install it for another host"
            )
        headers = {name: f"Bearer {reference(host, var)}" for name, var in entry.header_vars.items()}
        remote: dict[str, Any] = {"url": entry.url} if host == "cursor" else {"type": "http", "url": entry.url}
        if host == "gemini":  # `httpUrl` is Gemini CLI's streamable HTTP; its `url` means SSE
            remote = {"httpUrl": entry.url}
        remote = {**remote, **({"headers": headers} if headers else {})}
        return _copilot(remote, ours=False) if host == "copilot" else remote
    env: dict[str, str] = {}
    if host not in ("claude-desktop", "codex"):  # Desktop expands nothing: keys come from where it starts
        env = {var: reference(host, var) for var in entry.key_vars}
    env.update(entry.literal_env)
    args = list(entry.args)
    ours = entry.name in {s.script for s in installed().values()}
    if root is not None and ours and "--root" not in args:
        args += ["--root", root_arg(host, root)]
    body: dict[str, Any] = {"command": entry.command, "args": args}
    if host in ("claude-code", "vscode"):
        body = {"type": "stdio", **body}
    if host == "codex" and entry.key_vars:
        # Codex expands nothing in config.toml; `env_vars` names variables it forwards from its own
        # environment, beside a default whitelist (developers.openai.com/codex/mcp, "STDIO servers")
        body["env_vars"] = list(entry.key_vars)
    if env:
        body["env"] = env
    if host == "claude-code" and ours:
        # Claude Code defers MCP tools behind its tool search unless the server entry says `alwaysLoad`
        # (colbymchenry/codegraph#1697, anthropics/claude-code#56551); our primary tools also carry the `_meta` key
        body["alwaysLoad"] = True
    return _copilot(body, ours) if host == "copilot" else body


def _copilot(body: dict[str, Any], ours: bool) -> dict[str, Any]:
    """Copilot CLI's entry: `type` and the enabled `tools` list its schema adds (github/copilot-cli#26), and
    for Cadre's servers `deferTools: "never"`, its per-server opt-out of the tool search that hides MCP tools
    once about 30 are connected (colbymchenry/codegraph#1697)."""
    extra: dict[str, Any] = {"type": "local" if "command" in body else "http", "tools": ["*"]}
    return {**extra, **body, **({"deferTools": "never"} if ours else {})}


def _codex_remote(entry: ServerEntry) -> dict[str, Any]:
    """Codex's remote entry: the bearer token comes from `bearer_token_env_var`, its only way to send
    `Authorization: Bearer <var>` (developers.openai.com/codex/mcp, "Streamable HTTP servers")."""
    other = sorted(set(entry.header_vars) - {"Authorization"})
    if other:
        raise CadreError(
            f"{entry.name} sends {', '.join(other)} as a Bearer header, which Codex cannot write; "
            "install it for another host, or send the token as Authorization"
        )
    var = entry.header_vars.get("Authorization")
    return {"url": entry.url, **({"bearer_token_env_var": var} if var else {})}


@dataclass
class Plan:
    path: Path
    before: str | None
    after: str
    notes: list[str]

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        old = (self.before or "").splitlines(keepends=True)
        new = self.after.splitlines(keepends=True)
        label = str(self.path)
        import difflib

        return "".join(difflib.unified_diff(old, new, f"{label} (before)", f"{label} (after)"))


def plan_install(host: str, entries: list[ServerEntry], path: Path, *, allow_secrets: bool = False,
                 root: Path | None = None) -> Plan:  # fmt: skip
    """The file as it would be after installing `entries` (serving `root`); other servers are kept as they are."""
    if host not in HOSTS:
        raise CadreError(f"unknown host '{host}'; use one of {', '.join(HOSTS)}")
    literal = [f"{e.name}: {k}" for e in entries for k in e.literal_env]
    if literal and not allow_secrets:
        raise CadreError(
            "refusing to write literal values for " + ", ".join(literal)
            + "; use env var references, or pass --allow-secrets if the file is private"
        )  # fmt: skip
    before = path.read_text("utf-8") if path.exists() else None
    if host == "codex":
        return Plan(path, before, _codex_after(path, before, entries, root), [])
    data = _load(path, before)
    key = "servers" if host == "vscode" else "mcpServers"
    servers = data.setdefault(key, {})
    if not isinstance(servers, dict):
        raise CadreError(f"{path}: '{key}' is not an object; fix the file by hand, it was left untouched")
    for entry in entries:
        servers[entry.name] = render(host, entry, root)
    notes = []
    if host == "vscode":
        inputs = data.setdefault("inputs", [])
        known = {i.get("id") for i in inputs if isinstance(i, dict)}
        for var in sorted({v for e in entries for v in (*e.key_vars, *e.header_vars.values())}):
            if _input_id(var) not in known:
                inputs.append({"type": "promptString", "id": _input_id(var), "description": var, "password": True})
    if host == "claude-desktop" and any(e.key_vars for e in entries if not e.url):
        from cadre_core.envfile import env_file_path

        notes.append(
            "Claude Desktop passes no keys from your shell and expands no ${VAR}: put them in "
            f"{env_file_path()} (NAME=value lines, chmod 600)"
        )
    after = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if before is not None and _load(path, before) == data:
        after = before  # same content: leave the file byte-for-byte as it is
    return Plan(path, before, after, notes)


CODEX_KEYS = ("command", "args", "env", "env_vars", "url", "bearer_token_env_var")
"""The keys `cadre install codex` writes; a server's other keys (timeouts, enabled_tools...) are the user's."""


def _codex_after(path: Path, before: str | None, entries: list[ServerEntry], root: Path | None) -> str:
    """config.toml with `[mcp_servers.<name>]` set for `entries`, edited in place by tomlkit: other tables,
    keys, comments and layout stay as they are, and an entry already there keeps the keys Cadre does not own."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(before or "")
    except TOMLKitError as exc:
        raise CadreError(f"{path} is not valid TOML ({exc}); fix or move it, it was left untouched") from None
    servers = doc.get("mcp_servers")
    if servers is None:
        servers = doc["mcp_servers"] = tomlkit.table(is_super_table=True)
    if not isinstance(servers, dict):
        raise CadreError(f"{path}: 'mcp_servers' is not a table; fix the file by hand, it was left untouched")
    for entry in entries:
        body = render("codex", entry, root)
        if "env" in body:  # literal values a team file set: `env = { NAME = "value" }` on the entry's table
            env = tomlkit.inline_table()
            env.update(body["env"])
            body["env"] = env
        current = servers.get(entry.name)
        if not isinstance(current, dict):
            servers[entry.name] = body
            continue
        for key in [k for k in CODEX_KEYS if k in current and k not in body]:
            del current[key]
        for key, value in body.items():
            if current.get(key) != value:
                current[key] = value
    return before if before is not None and doc.as_string() == before else doc.as_string()


def _load(path: Path, text: str | None) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CadreError(f"{path} is not valid JSON ({exc}); fix or move it, it was left untouched") from None
    if not isinstance(data, dict):
        raise CadreError(f"{path} does not hold a JSON object; fix or move it, it was left untouched")
    return data


def apply(plan: Plan) -> Path | None:
    """Write the plan, after a timestamped backup of the old file; returns the backup path."""
    if not plan.changed:
        return None
    backup = None
    plan.path.parent.mkdir(parents=True, exist_ok=True)
    if plan.before is not None:
        backup = plan.path.with_name(f"{plan.path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(plan.path, backup)
    tmp = plan.path.with_name(plan.path.name + ".tmp")
    tmp.write_text(plan.after, "utf-8")
    tmp.replace(plan.path)
    return backup
