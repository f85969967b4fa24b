"""The librarian server, built with the Cadre server kit."""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import MCPServer

from cadre_core.kit import build_server

ROLE = "librarian"
NAME = "cadre-librarian"
INSTRUCTIONS = "Librarian: researches external libraries and docs and answers with citations."


def create_server(root: Path | None = None) -> MCPServer:
    """The librarian server; tools are registered here as they land."""
    return build_server(ROLE, NAME, INSTRUCTIONS, root=root)
