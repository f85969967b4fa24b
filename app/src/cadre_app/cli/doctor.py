"""`cadre doctor`: what works, what is missing, and how to fix it."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from cadre_core.config import load_config
from cadre_core.envfile import LOADED
from cadre_core.ledger import default_ledger_path
from cadre_core.models import cli_agent_class
from cadre_core.models.refs import CLI_PROVIDERS, is_host
from cadre_core.router import Router
from cadre_core.servers import installed
from cadre_core.threads import default_threads_path

SDKS = ("mcp", "anthropic", "openai", "google-genai", "genai-prices", "httpx2")


def report(args: Any) -> dict[str, Any]:
    loaded = load_config(args.root)
    cfg = loaded.config
    router = Router(cfg)
    keys = {}
    for name, provider in cfg.providers.items():
        keys[name] = {
            "found_in": provider.key_source(),
            "from_file": str(LOADED[found]) if (found := provider.key_source()) in LOADED else None,
            "env": provider.api_key_env,
            "required": provider.key_required,
            "base_url": provider.resolved_base_url(),
        }
    agents = {
        name: cli_agent_class(name).status(s.command if (s := cfg.provider_config(name)) else None)
        for name in CLI_PROVIDERS
    }
    roles = {}
    for role in cfg.roles:
        availability = router.availability(role)
        entries = [{"model": c.model, "unavailable": why} for c, why in availability]
        first = next((c.model for c, why in availability if why is None and not is_host(c.model)), None)
        roles[role] = {
            "routes_to": first or "sampling:host (the host's model, if the host supports MCP sampling)",
            "candidates": entries,
        }
    versions: dict[str, str | None] = {}
    for sdk in (*SDKS, *(server.distribution for server in installed().values())):
        try:
            versions[sdk] = version(sdk)
        except PackageNotFoundError:
            versions[sdk] = None
    return {
        "keys": keys,
        "cli_agents": agents,
        "roles": roles,
        "librarian": librarian_sources(args.root),
        "config_sources": loaded.files,
        "ledger": str(cfg.paths.ledger or default_ledger_path()),
        "threads": str(cfg.paths.threads or default_threads_path()),
        "storage": storage_report(cfg),
        "versions": versions,
    }


def storage_report(cfg: Any) -> dict[str, Any]:
    """The storage backend (a PostgreSQL URL with its password masked, or SQLite files) and, per store, the
    schema version it is at and the latest: `current` is False when a store needs the migrations its next
    open runs. Reads only: nothing is created or migrated."""
    from cadre_core.budget import MIGRATIONS as BUDGET
    from cadre_core.budget import default_budget_path
    from cadre_core.jobs import MIGRATIONS as JOBS
    from cadre_core.jobs import default_jobs_path
    from cadre_core.ledger import MIGRATIONS as LEDGER
    from cadre_core.storage import StorageError, redact_url, schema_version, storage_url
    from cadre_core.threads import MIGRATIONS as THREADS

    out: dict[str, Any] = {"backend": "sqlite", "url": None, "stores": {}, "current": None, "error": None}
    try:
        url = storage_url(cfg)
        out |= {"backend": "postgresql", "url": redact_url(url)} if url else {}
        files = {"ledger": (LEDGER, cfg.paths.ledger or default_ledger_path()),
                 "budget": (BUDGET, cfg.paths.budget or default_budget_path()),
                 "threads": (THREADS, cfg.paths.threads or default_threads_path()),
                 "jobs": (JOBS, cfg.paths.jobs or default_jobs_path())}  # fmt: skip
        for name, (migrations, path) in files.items():
            at = schema_version(url or path, migrations)
            out["stores"][name] = {"where": out["url"] or str(path), "version": at, "latest": migrations.latest}
        out["current"] = all(s["version"] in (None, s["latest"]) for s in out["stores"].values())
    except StorageError as exc:
        out["error"] = str(exc)
    return out


def librarian_sources(root: Any) -> dict[str, Any] | None:
    """Where the librarian reads from: the GitHub token's source and the workspace's packages; None when
    the librarian is not installed."""
    from pathlib import Path

    if "librarian" not in installed():
        return None
    from cadre_librarian.environments import python_site_dirs
    from cadre_librarian.github_http import discover_token

    workspace = Path(root or Path.cwd()).resolve()
    _token, source = discover_token()
    sites, how = python_site_dirs([workspace])
    return {
        "github_token": source or None,
        "python_packages": how,
        "site_packages": [str(s) for s in sites],
        "node_modules": (workspace / "node_modules").is_dir(),
    }


def run(args: Any) -> int:
    data = report(args)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    keys = Table(title="Provider keys", title_justify="left")
    for col in ("provider", "key", "base URL"):
        keys.add_column(col)
    for name, k in data["keys"].items():
        if k["found_in"]:
            state = f"[green]found[/] in {k['found_in']}" + (f" (from {k['from_file']})" if k["from_file"] else "")
        elif not k["required"]:
            state = "not needed"
        else:
            state = f"[yellow]missing[/]: set {' or '.join(k['env'])}"
        keys.add_row(name, state, k["base_url"] or "SDK default")
    console.print(keys)
    agents = Table(title="CLI agents (subscription logins)", title_justify="left")
    for col in ("provider", "executable", "login"):
        agents.add_column(col)
    for name, a in data["cli_agents"].items():
        exe = a["installed"] or f"[dim]not installed[/] ({a['install']})"
        login = f"[green]found[/]: {a['login']}" if a["login"] else f"no login file found ({a['fix']} if it fails)"
        agents.add_row(name, exe, login if a["installed"] else "-")
    console.print(agents)
    roles = Table(title="Roles", title_justify="left")
    for col in ("role", "routes to", "skipped candidates"):
        roles.add_column(col)
    for role, r in data["roles"].items():
        skipped = "; ".join(f"{c['model']} ({c['unavailable']})" for c in r["candidates"] if c["unavailable"])
        roles.add_row(role, r["routes_to"], skipped or "-")
    console.print(roles)
    if (lib := data["librarian"]) is not None:
        token = (
            f"[green]GitHub token[/] from {lib['github_token']}"
            if lib["github_token"]
            else "[yellow]no GitHub token[/] (public limit of 60 requests/hour, no code search): set GITHUB_TOKEN "
            "or run `gh auth login`"
        )
        node = "; node_modules found" if lib["node_modules"] else ""
        console.print(f"[bold]Librarian[/]: {token}; installed packages from {lib['python_packages']}{node}")
    console.print("[bold]Config sources[/] (later wins): " + ", ".join(data["config_sources"]))
    console.print(f"[bold]Ledger[/]: {data['ledger']}")
    console.print(f"[bold]Threads[/]: {data['threads']}")
    console.print(f"[bold]Storage[/]: {storage_line(data['storage'])}")
    console.print("[bold]Versions[/]: " + ", ".join(f"{k} {v or 'missing'}" for k, v in data["versions"].items()))
    if not any(k["found_in"] for k in data["keys"].values()):
        console.print(
            "[yellow]No provider key found.[/] Search works offline; deep search and the other roles use the "
            "host's model if the host supports MCP sampling. Set ANTHROPIC_API_KEY, OPENAI_API_KEY or "
            "GEMINI_API_KEY to route to them."
        )
    return 0


def storage_line(storage: dict[str, Any]) -> str:
    """One line: the backend, and whether every store's schema is current (or what to do)."""
    where = f"PostgreSQL at {storage['url']}" if storage["url"] else "SQLite files (the ledger and threads above)"
    if storage["error"]:
        return f"{where}: [red]unavailable[/]: {storage['error']}"
    stores = storage["stores"].items()
    behind = [
        f"{name} {s['version']} of {s['latest']}" for name, s in stores if s["version"] not in (None, s["latest"])
    ]
    if behind:
        return f"{where}: [yellow]schema behind[/] ({', '.join(behind)}); the next start of a server migrates it"
    return f"{where}: schema current (" + ", ".join(f"{n} {s['latest']}" for n, s in stores) + ")"
