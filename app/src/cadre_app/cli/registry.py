"""`cadre registry export|import`: share one set of servers across a team."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cadre_app.cli.install import install
from cadre_app.registry import entry_from, export, load


def run(args: Any) -> int:
    if args.registry_command == "export":
        servers = [s.strip().removeprefix("cadre-") for s in args.servers.split(",") if s.strip()]
        for path in export(args.out, servers, remote_url=args.remote_url):
            print(path)
        return 0
    entries = [entry_from(load(path), str(path), prefer_remote=args.remote) for path in args.files]
    return install(
        args.host, entries, scope=args.scope, root=Path(args.root or Path.cwd()), config=args.config_path,
        dry_run=args.dry_run, allow_secrets=args.allow_secrets,
    )  # fmt: skip
