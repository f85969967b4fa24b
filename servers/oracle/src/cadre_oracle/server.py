"""The oracle server, built with the Cadre server kit."""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import MCPServer

from cadre_core.kit import build_server

ROLE = "oracle"
NAME = "cadre-oracle"
INSTRUCTIONS = "Oracle: a second opinion and deep reasoning from a strong model of another vendor."


def create_server(root: Path | None = None) -> MCPServer:
    """The oracle server; tools are registered here as they land."""
    return build_server(ROLE, NAME, INSTRUCTIONS, root=root)
