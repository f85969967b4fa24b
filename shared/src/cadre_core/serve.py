"""The shared entry point of every server's console script."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cadre_core.logs import configure_logging


def serve_main(name: str, create_server: Callable[..., Any], argv: list[str] | None = None) -> None:
    """Parse `--root` and `--log-level`, log to stderr, and serve over stdio."""
    parser = argparse.ArgumentParser(prog=name, description=f"{name}: a Cadre MCP server (stdio).")
    parser.add_argument("--root", type=Path, help="workspace root when the host gives no MCP roots (default: cwd)")
    parser.add_argument(
        "--log-level",
        default=None,
        help="DEBUG, INFO, WARNING or ERROR (default: $CADRE_LOG_LEVEL or INFO)",
    )
    args = parser.parse_args(argv)
    if args.root is not None and not args.root.is_dir():
        parser.error(f"--root {args.root} is not a directory")
    configure_logging(args.log_level, server=name)
    server = create_server(root=args.root)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
