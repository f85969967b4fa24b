"""The search server: `search_codebase` and `find_symbol` over the offline engine."""

# No `from __future__ import annotations`: the search signature names a local resolver, so its
# annotations must be evaluated here, where `ask_host` is in scope.
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
import mcp_types
from mcp.server.mcpserver import Context, Resolve, Sample
from pydantic import Field

from cadre_core.accounting import tool_errors
from cadre_core.arguments import Name, PathText, Question
from cadre_core.errors import WorkspaceError, clip
from cadre_core.host_sampling import host_sample_request
from cadre_core.mcp_server import ALWAYS_LOAD, CadreServer, HostRoots, build_server
from cadre_search.about import SERVER

if TYPE_CHECKING:
    from cadre_core.models.base import ModelRequest, ModelResponse
    from cadre_search.engine import Engine

ROLE = SERVER["role"]
NAME = SERVER["script"]
INSTRUCTIONS = (
    "Search: finds the code that matters in this workspace, ranked, in one call, from words, identifiers or a "
    "pasted error. Use it before grepping or reading many files, to locate where something is implemented, "
    "defined or used across a large codebase."
)


def _engine(server: CadreServer, roots: mcp_types.ListRootsResult | None, path: str | None) -> "Engine":
    from cadre_search.engine import engine_for

    workspace = server.kit.workspace(roots)
    root = workspace.primary
    if path and Path(path).is_absolute():
        owner = next((r for r in workspace.roots if Path(path).resolve().is_relative_to(r)), None)
        if owner is None:
            raise WorkspaceError(f"'{clip(path)}' is outside the workspace roots; pass a path inside them")
        root = owner
    return engine_for(root, answer_while_building=True)


def _progress_sender(ctx: Context) -> Callable[[int, int], None]:
    def send(done: int, total: int) -> None:
        try:
            anyio.from_thread.run(ctx.report_progress, done, total, f"indexing {done}/{total} files")
        except Exception:  # progress is best effort
            return

    return send


def create_server(root: Path | None = None, *, watch: bool = False) -> CadreServer:
    """The search server with its two tools; `watch` keeps the `--root` index fresh in the background."""
    server = build_server(ROLE, NAME, INSTRUCTIONS, root=root)
    if watch:
        from cadre_search.watch import start_watching

        start_watching(server.kit.workspace().primary)  # refuses / and $HOME
    kit = server.kit

    def ask_host(query: str, ctx: Context, roots: HostRoots = None, path: str | None = None, limit: int = 10,
                 mode: str = "fast") -> Sample | None:  # fmt: skip
        """Resolver: with no provider key, deep mode's answer comes from the host's model."""
        if mode != "deep":
            return None
        from cadre_search.hosted import host_request

        def build() -> "ModelRequest":
            return host_request(query, _engine(server, roots, path).search(query, path=path, limit=limit))

        return host_sample_request(ctx, kit, build)

    @server.tool(meta=ALWAYS_LOAD)
    @tool_errors
    async def search_codebase(
        query: Annotated[Question, Field(description="Words, identifiers, or a pasted error/bug report")],
        ctx: Context,
        path: Annotated[PathText | None, Field(description="Only under this file or folder")] = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        mode: Annotated[Literal["fast", "deep"], Field(description="deep: a fast model explores and answers")] = "fast",
        roots: HostRoots = None,
        host: Annotated[mcp_types.CreateMessageResult | None, Resolve(ask_host)] = None,
    ) -> dict[str, Any]:
        """Ranked code locations (path, lines, symbol, snippet, why) for a question, one call instead of many greps."""
        engine = _engine(server, roots, path)
        fast = await anyio.to_thread.run_sync(
            lambda: engine.search(query, path=path, limit=limit, progress=_progress_sender(ctx)),
            abandon_on_cancel=True,
        )
        if mode == "fast":
            return fast.as_dict()
        from cadre_search.deep import deep_search
        from cadre_search.hosted import host_answer

        call = kit.new_call("search_codebase")

        async def call_model(
            request: "ModelRequest", host_sample: mcp_types.CreateMessageResult | None = None
        ) -> "ModelResponse":
            return await kit.call_model(ctx, request, tool="search_codebase", call=call, host_sample=host_sample)

        if kit.keyed(ROLE):
            return await deep_search(engine, query, call_model, limit=limit, path=path, fast=fast)
        return await host_answer(call_model, query, fast, host)

    @server.tool()
    @tool_errors
    async def find_symbol(
        name: Annotated[Name, Field(description="Symbol name, e.g. Router or Router.request")],
        kind: Annotated[Name | None, Field(description="function, class, method, ...")] = None,
        roots: HostRoots = None,
    ) -> dict[str, Any]:
        """Where a symbol is defined, and who calls, imports or types it (nearest first)."""
        engine = _engine(server, roots, None)
        return await anyio.to_thread.run_sync(lambda: engine.find_symbol(name, kind), abandon_on_cancel=True)

    return server
