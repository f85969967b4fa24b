"""`cadre install HOST`: add the servers to Claude Desktop, Claude Code, Cursor, VS Code, Codex or Gemini CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cadre_app.install import USER_SCOPE_HOSTS, ServerEntry, apply, config_path, default_entries, plan_install, root_arg
from cadre_core.errors import CadreError


def project_root(root: Path) -> Path:
    """The project the servers will read: an existing folder that is not `/`, the home folder or Cadre's own
    checkout (running `cadre install` from the checkout would configure Cadre itself, not your project)."""
    real = root.expanduser().resolve()
    if not real.is_dir():
        raise CadreError(f"--root {root} is not a folder; pass your project's folder")
    if real in (Path(real.anchor), Path.home().resolve()):
        raise CadreError(f"{real} is not a project: the servers would read all of it; cd to a project or pass --root")
    if (real / "shared/src/cadre_core/__init__.py").is_file():
        raise CadreError(
            f"{real} is Cadre's own checkout; run `cadre install` from your project's folder or pass --root DIR"
        )
    return real


def install(host: str, entries: list[ServerEntry], *, scope: str | None, root: Path, config: Path | None, dry_run: bool,
            allow_secrets: bool = False, agents: bool = False) -> int:  # fmt: skip
    """Plan, show and (unless a dry run) write one host's config, serving the project at `root`; with `agents`
    (Claude Code only) also its subagent files and the project's AGENTS.md snippet."""
    if agents and host != "claude-code":
        raise CadreError(f"--agents writes Claude Code subagents; drop it for {host}")
    scope = scope or ("user" if host in USER_SCOPE_HOSTS else "project")
    if scope == "project" or root_arg(host, root) != "${workspaceFolder}":  # the file names this folder
        root = project_root(root)
    path = config or config_path(host, scope, root)
    plans = [plan_install(host, entries, path, allow_secrets=allow_secrets, root=root)]
    if agents:
        from cadre_app.agents import plan_agents

        agents_dir = (root if scope == "project" else Path.home()) / ".claude/agents"
        plans += plan_agents([e.name for e in entries], agents_dir, root / "AGENTS.md")
    for note in plans[0].notes:
        print(f"note: {note}", file=sys.stderr)
    where = f"{host}, {scope} scope, workspace {root}"
    for plan in plans:
        if not plan.changed:
            print(f"{plan.path}: already up to date ({where})")
        elif dry_run:
            print(plan.diff(), end="")
        else:
            backup = apply(plan)
            print(f"wrote {plan.path} ({where})" + (f"; backup: {backup}" if backup else ""))
    return 0


def run(args: Any) -> int:
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    return install(
        args.host, default_entries(servers), scope=args.scope, root=Path(args.install_root or args.root or Path.cwd()),
        config=args.config_path, dry_run=args.dry_run, allow_secrets=args.allow_secrets, agents=args.agents,
    )  # fmt: skip
