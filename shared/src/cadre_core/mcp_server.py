"""`build_server`: a role's `MCPServer`, carrying its `Kit`, whose argument errors read as one line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import mcp_types
from mcp.server.mcpserver import Context, ListRoots, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import Field, ValidationError

from cadre_core.kit import Kit

if TYPE_CHECKING:
    from cadre_core.result_pages import ResultStore


def request_roots(ctx: Context) -> ListRoots | None:
    """Resolver: ask the host for its roots when it declared the capability."""
    caps = ctx.client_capabilities
    return ListRoots() if caps is not None and caps.roots is not None else None


ALWAYS_LOAD = {"anthropic/alwaysLoad": True}
"""`meta` for a server's primary tool: Claude Code defers every MCP tool behind its tool search unless the tool
carries this key, and a deferred tool is often never called (colbymchenry/codegraph#1696: 4 of 6 headless runs
skipped it, 6 of 6 called it once loaded; anthropics/claude-code#56551 names the key). Other hosts ignore `_meta`."""

HostRoots = Annotated[mcp_types.ListRootsResult | None, Resolve(request_roots)]
"""Annotate a tool parameter with this to receive the host's roots (hidden from the schema)."""


class CadreServer(MCPServer):
    """An `MCPServer` with the role's `Kit` at `.kit`, whose argument validation errors are one line naming
    the argument (no URLs, no echo)."""

    def __init__(self, kit: Kit, **settings: Any):
        super().__init__(**settings)
        self.kit = kit
        self._results: ResultStore | None = None  # opened when a result is first paged or read
        self.result_reader: str | None = None  # the read_result tool's name, once registered
        pages = self.resource(RESULTS_TEMPLATE, name="cadre-result-page", mime_type="text/plain",
                              description="A page of a large tool result, linked from the result")  # fmt: skip
        pages(self.read_result_page)

    def results(self) -> ResultStore:
        """The store of paged results (`[paths] results`, else the user cache dir)."""
        if self._results is None:
            from cadre_core.result_pages import ResultStore, default_results_path

            self._results = ResultStore(self.kit.config.config.paths.results or default_results_path())
        return self._results

    def read_result_page(self, id: str, page: str = "1") -> str:  # `id`: the URI template's name
        """Resource handler for `cadre://results/{id}{?page}`: one stored page, or a one-line error."""
        from mcp.server.mcpserver.exceptions import ResourceError

        from cadre_core.result_pages import UnknownResultError

        if not page.isdigit():
            raise ResourceError(f"page must be a whole number like ?page=2, not {page[:20]!r}")
        try:
            return self.results().page(id, int(page))[0]
        except UnknownResultError as exc:
            raise ResourceError(str(exc)) from exc

    def add_result_reader(self) -> None:
        """Register `read_result(id, page)`: a paged result's pages as a tool, for hosts that never read
        `resource_link` blocks (anthropics/claude-code#74712). For servers whose results can be paged;
        it costs about 100 tokens of tools/list."""
        from mcp.server.mcpserver.exceptions import ToolError
        from mcp_types import ToolAnnotations

        async def read_result(
            id: Annotated[str, Field(min_length=1, max_length=40)],
            page: Annotated[int, Field(ge=1, le=100_000)],
        ) -> str:
            """A page of a large result another tool paged (its paged.id), for hosts that cannot read its links."""
            import anyio

            from cadre_core.result_pages import UnknownResultError

            try:
                return (await anyio.to_thread.run_sync(lambda: self.results().page(id, page)))[0]
            except UnknownResultError as exc:
                raise ToolError(str(exc)) from None

        self.result_reader = "read_result"
        self.tool(annotations=ToolAnnotations(read_only_hint=True), structured_output=False)(read_result)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """The tool's result, paged when it is over `[server] max_result_tokens`."""
        result = await self._call_tool(name, arguments, context)
        if isinstance(result, CallToolResult) and _text_chars(result) > MIN_PAGED_CHARS:
            import anyio

            from cadre_core.result_pages import paged

            limit = self.kit.config.config.server.max_result_tokens
            return await anyio.to_thread.run_sync(  # SQLite write
                lambda: paged(result, self.results(), limit, reader=self.result_reader)
            )
        return result

    async def _call_tool(
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


RESULTS_TEMPLATE = "cadre://results/{id}{?page}"
"""Where the pages of a large result are read (RFC 6570 `{?page}`: mcp 2.3.0 matches `?page=N` or none)."""
MIN_PAGED_CHARS = 3400
"""Results this short fit the smallest allowed `max_result_tokens` (1000) and skip the config load."""


def _text_chars(result: CallToolResult) -> int:
    return sum(len(getattr(block, "text", "")) for block in result.content)


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
