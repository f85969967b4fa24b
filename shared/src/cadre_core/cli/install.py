"""`cadre install HOST`: add the servers to Claude Desktop, Claude Code, Cursor or VS Code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cadre_core.install import apply, config_path, default_entries, plan_install


def install(host: str, entries: list, *, scope: str | None, root: Path, config: Path | None, dry_run: bool,
            allow_secrets: bool = False) -> int:  # fmt: skip
    """Plan, show and (unless a dry run) write one host's config."""
    scope = scope or ("project" if host != "claude-desktop" else "user")
    path = config or config_path(host, scope, root)
    plan = plan_install(host, entries, path, allow_secrets=allow_secrets)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if not plan.changed:
        print(f"{path}: already up to date")
        return 0
    if dry_run:
        print(plan.diff(), end="")
        return 0
    backup = apply(plan)
    print(f"{path}: updated" + (f" (backup: {backup})" if backup else ""))
    return 0


def run(args: Any) -> int:
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    return install(
        args.host, default_entries(servers), scope=args.scope, root=Path(args.root or Path.cwd()),
        config=args.config_path, dry_run=args.dry_run, allow_secrets=args.allow_secrets,
    )  # fmt: skip
