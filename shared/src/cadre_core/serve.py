"""The shared entry point of every server's console script."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cadre_core import telemetry
from cadre_core.envfile import load_env_file
from cadre_core.errors import CadreError
from cadre_core.logs import configure_logging


def serve_main(
    name: str,
    create_server: Callable[..., Any],
    argv: list[str] | None = None,
    *,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Parse `--root`, `--log-level` and any server `options`, log to stderr, and serve over stdio.

    Server options are passed to `create_server` as keyword arguments.
    """
    parser = argparse.ArgumentParser(prog=name, description=f"{name}: a Cadre MCP server (stdio).")
    parser.add_argument("--root", type=Path, help="workspace root when the host gives no MCP roots (default: cwd)")
    parser.add_argument(
        "--log-level",
        default=None,
        help="DEBUG, INFO, WARNING or ERROR (default: $CADRE_LOG_LEVEL or INFO)",
    )
    known = {a.dest for a in parser._actions}
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    extra = {k: v for k, v in vars(args).items() if k not in known}
    if args.root is not None and not args.root.is_dir():
        parser.error(f"--root {args.root} is not a directory")
    configure_logging(args.log_level, server=name)
    load_env_file()  # keys for hosts that pass none, e.g. Claude Desktop
    telemetry.setup(name)
    try:
        server = create_server(root=args.root, **extra)
    except CadreError as exc:
        parser.exit(2, f"{name}: {exc}\n")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        telemetry.shutdown()
