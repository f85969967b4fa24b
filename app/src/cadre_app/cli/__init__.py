"""The `cadre` command."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from cadre_app.install import HOSTS
from cadre_core.errors import CadreError
from cadre_core.servers import installed


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cadre", description="Cadre: multi-model MCP subagents.")
    parser.add_argument("--root", type=Path, default=None, help="workspace root (default: cwd)")
    sub = parser.add_subparsers(dest="command", required=True)
    every = ",".join(installed())  # the installed servers (entry points `cadre.servers`)

    doctor = sub.add_parser("doctor", help="keys, routable roles, config sources, ledger path, SDK versions")
    doctor.add_argument("--json", action="store_true", help="print JSON")

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="the merged config, secrets masked, with each value's source")
    show.add_argument("--json", action="store_true", help="print JSON")

    cost = sub.add_parser("cost", help="spend from the ledger")
    cost.add_argument(
        "--by",
        choices=["role", "model", "tool", "day", "thread", "user"],
        action="append",
        help="grouping (repeatable); model and tool show calls, spend, average thread cost, off-the-rails %%, "
        "p50/p95 latency and failure rate",
    )
    cost.add_argument("--days", type=_positive_int, default=None, help="only the last N days (UTC)")
    cost.add_argument("--json", action="store_true", help="print JSON")
    cost.add_argument(
        "--html",
        type=Path,
        default=None,
        metavar="FILE",
        help="write a self-contained HTML report instead of the tables",
    )
    trace = sub.add_parser("trace", help="the chain of model attempts behind a thread")
    trace.add_argument("thread_id")
    trace.add_argument("--json", action="store_true", help="print JSON")

    search = sub.add_parser("search", help="search the workspace offline (no model, no key)")
    search.add_argument("query", help="the query; '-' reads it from stdin")
    search.add_argument("--root", dest="search_root", type=Path, default=None, help="workspace root (default: cwd)")
    search.add_argument("--limit", type=int, default=10, help="how many files (default 10)")
    search.add_argument("--path", default=None, help="only under this file or folder")
    search.add_argument("--json", action="store_true", help="print JSON")
    call = sub.add_parser("call", help="call a tool through a real MCP client (stdio, or --url for HTTP)")
    call.add_argument("server", help=" or ".join(installed()))
    call.add_argument("tool", help="the tool name, e.g. search_codebase")
    call.add_argument("--json", default=None, help="tool arguments as a JSON object")
    call.add_argument("--url", default=None, help="a streamable-HTTP endpoint instead of spawning the server")
    call.add_argument("--root", dest="call_root", type=Path, default=None, help="workspace root for the server")
    call.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the result")
    call.add_argument(
        "--token-file", type=Path, default=None, metavar="FILE", help="bearer token for --url (default: $CADRE_TOKEN)"
    )
    call.add_argument("--verbose", action="store_true", help="show the spawned server's log lines")
    install = sub.add_parser("install", help="add the servers to an MCP host's config")
    install.add_argument("host", choices=HOSTS)
    install.add_argument("--servers", default=every, help="comma-separated (default: all)")
    install.add_argument(
        "--root", dest="install_root", type=Path, default=None, metavar="DIR",
        help="the project the servers read (default: cwd); project scope writes the host's file there",
    )  # fmt: skip
    install.add_argument(
        "--scope", choices=["user", "project"], default=None,
        help="default: project (its .mcp.json, .cursor/ or .vscode/); user for claude-desktop, codex, gemini",
    )  # fmt: skip
    install.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    install.add_argument("--allow-secrets", action="store_true", help="allow literal secrets in the file")
    install.add_argument("--config-path", type=Path, default=None, help="edit this file instead of the default")
    install.add_argument(
        "--agents", action="store_true",
        help="claude-code: also write .claude/agents/cadre-*.md subagents and an AGENTS.md snippet",
    )  # fmt: skip

    registry = sub.add_parser("registry", help="MCP Registry server.json files for a team")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True)
    export = registry_sub.add_parser("export", help="write <out>/<server>/server.json (schema 2025-12-11)")
    export.add_argument("--out", type=Path, default=Path("registry"), help="output folder (default ./registry)")
    export.add_argument("--servers", default=every)
    export.add_argument("--remote-url", default=None, help="team deployment base URL, e.g. https://cadre.example.com")
    imp = registry_sub.add_parser("import", help="install servers from a team's server.json files")
    imp.add_argument("files", nargs="+", type=Path, help="server.json files")
    imp.add_argument("--host", required=True, choices=HOSTS)
    imp.add_argument("--scope", choices=["user", "project"], default=None)
    imp.add_argument("--remote", action="store_true", help="use the team deployment instead of a local package")
    imp.add_argument("--dry-run", action="store_true")
    imp.add_argument("--allow-secrets", action="store_true")
    imp.add_argument("--config-path", type=Path, default=None)

    up = sub.add_parser("up", help="serve the servers over streamable HTTP (one process, stateless)")
    up.add_argument("--host", default="127.0.0.1", help="bind address (non-loopback needs tokens)")
    up.add_argument("--port", type=int, default=8765)
    up.add_argument("--root", dest="up_roots", type=Path, action="append", default=None,
                    help="a workspace to serve (repeatable; default: [up] roots in cadre.toml, else cwd); "
                    "clients' roots only select among these")  # fmt: skip
    up.add_argument("--servers", default=every, help="comma-separated (default: all)")
    up.add_argument(
        "--tokens-file",
        type=Path,
        default=None,
        help="bearer tokens, one a line: TOKEN, USER:TOKEN or USER:sha256:HEX (or CADRE_TOKENS)",
    )
    up.add_argument(
        "--hash-token",
        action="store_true",
        help="read a token from stdin, print its sha256:HEX line for a tokens file, exit",
    )
    up.add_argument("--grace", type=float, default=30.0, help="seconds in-flight calls get after SIGTERM")
    up.add_argument("--log-level", default=None)
    up.add_argument("--workers", type=_positive_int, default=1,
                    help="processes sharing the port on this machine; a worker that dies is restarted")  # fmt: skip
    from cadre_app.cli.eval import add_parser as add_eval

    add_eval(sub, _positive_int)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "search":  # search logs nothing; structlog costs ~90 ms of its start-up
        from cadre_core.logs import configure_logging

        configure_logging("WARNING")
    from cadre_core.envfile import load_env_file

    load_env_file()  # what the servers read too, so doctor and the servers agree
    try:
        if args.command == "doctor":
            from cadre_app.cli.doctor import run
        elif args.command == "config":
            from cadre_app.cli.config_show import run
        elif args.command == "search":
            from cadre_app.cli.search import run
        elif args.command == "trace":
            from cadre_app.cli.trace import run
        elif args.command == "call":
            from cadre_app.cli.call import run
        elif args.command == "install":
            from cadre_app.cli.install import run
        elif args.command == "up":
            from cadre_app.cli.up import run
        elif args.command == "registry":
            from cadre_app.cli.registry import run
        elif args.command == "eval":
            from cadre_app.cli.eval import run
        else:
            from cadre_app.cli.cost import run
        code = run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except CadreError as exc:
        print(f"cadre: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        print(f"cadre: a database could not be read ({exc}); check the path in `cadre doctor`", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`cadre call ... | head`): stop quietly, as the Python docs advise
        # (https://docs.python.org/3/library/signal.html#note-on-sigpipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer cut off this way


if __name__ == "__main__":
    sys.exit(main())
