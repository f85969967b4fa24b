"""Cadre vision: screenshots, PDFs and diagrams answered by a multimodal model, as an MCP server."""
