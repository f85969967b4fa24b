"""Cadre search: ranked codebase search, as an MCP server."""
