"""The search server, built with the Cadre server kit."""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import MCPServer

from cadre_core.kit import build_server

ROLE = "search"
NAME = "cadre-search"
INSTRUCTIONS = "Search: finds the code that matters in this workspace, ranked, in one call."


def create_server(root: Path | None = None) -> MCPServer:
    """The search server; tools are registered here as they land."""
    return build_server(ROLE, NAME, INSTRUCTIONS, root=root)
