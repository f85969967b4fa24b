"""Cadre oracle: a second opinion from another vendor's reasoning model, as an MCP server."""
