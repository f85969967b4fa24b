"""Baseline for `cold_start.py`: a bare `MCPServer` over stdio, no Cadre code.

It exposes no tools, like the kit-built servers today, so both sides of the
comparison answer `tools/list` with the same (empty) list.
"""

from mcp.server.mcpserver import MCPServer

server = MCPServer(name="bare-hello", instructions="A bare MCP server for the cold-start baseline.")

if __name__ == "__main__":
    server.run()
