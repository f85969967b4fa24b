"""`build_server`: a role's `MCPServer`, carrying its `Kit`, whose argument errors read as one line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import mcp_types
from mcp.server.mcpserver import Context, ListRoots, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from cadre_core.kit import Kit


def request_roots(ctx: Context) -> ListRoots | None:
    """Resolver: ask the host for its roots when it declared the capability."""
    caps = ctx.client_capabilities
    return ListRoots() if caps is not None and caps.roots is not None else None


HostRoots = Annotated[mcp_types.ListRootsResult | None, Resolve(request_roots)]
"""Annotate a tool parameter with this to receive the host's roots (hidden from the schema)."""


class CadreServer(MCPServer):
    """An `MCPServer` with the role's `Kit` at `.kit`, whose argument validation errors are one line naming
    the argument (no URLs, no echo)."""

    def __init__(self, kit: Kit, **settings: Any):
        super().__init__(**settings)
        self.kit = kit

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            from cadre_core.arguments import validation_message

            schema = next((t.input_schema for t in await self.list_tools() if t.name == name), {})
            raise ToolError(f"Error executing tool {name}: {validation_message(cause, schema)}") from cause


def build_server(
    role: str, name: str, instructions: str, *, kit: Kit | None = None, root: Path | None = None
) -> CadreServer:
    """The server for `role` with its `Kit` at `server.kit`. Register tools with `@server.tool()` over
    functions wrapped in `accounting.tool_errors`."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        server_version = version(name)
    except PackageNotFoundError:
        server_version = "0.0.0"
    from cadre_core.logs import ensure_logging

    ensure_logging()  # never structlog's stdout default: stdout is the protocol
    return CadreServer(
        kit or Kit(role, name, root=root),
        name=name,
        instructions=instructions,
        version=server_version,
        log_level="WARNING",
    )
