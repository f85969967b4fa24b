"""Cadre librarian: research across libraries and docs, with citations, as an MCP server."""
