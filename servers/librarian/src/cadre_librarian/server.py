"""The librarian server: thin MCP wrappers over research, read_source and find_examples."""

# No `from __future__ import annotations`: the research signature names a local resolver, so its
# annotations must be evaluated here, where `ask_host` is in scope.
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import mcp_types
from mcp.server.mcpserver import Context, Resolve, Sample
from pydantic import Field

from cadre_core.accounting import tool_errors
from cadre_core.arguments import Line, Name, Names, PathText, Question
from cadre_core.host_sampling import host_sample_request
from cadre_core.kit import Kit
from cadre_core.mcp_server import ALWAYS_LOAD, CadreServer, HostRoots, build_server
from cadre_librarian.about import SERVER

if TYPE_CHECKING:
    from cadre_core.models.base import ModelRequest

ROLE = SERVER["role"]
NAME = SERVER["script"]
INSTRUCTIONS = (
    "Librarian: researches how libraries really work from their source (installed packages, GitHub, docs pages) "
    "and answers with checked citations. Use it for any question about a third-party library or API: how to call "
    "it, why it behaves so, what changed between versions, or real usage examples."
)


def create_server(root: Path | None = None, *, library: Any = None) -> CadreServer:
    """The librarian server; `library` replaces the default sources (tests pass fakes)."""
    server = build_server(ROLE, NAME, INSTRUCTIONS, root=root)
    kit = server.kit
    shelf = _Shelf(kit, library)

    def ask_host(
        question: str,
        ctx: Context,
        roots: HostRoots = None,
        libraries: list[str] | None = None,
        version: str | None = None,
    ) -> Sample | None:  # evaluated by the SDK (get_type_hints): only names importable at run time
        """Resolver: with no provider key, the host's model answers from the ranked installed evidence."""
        from cadre_librarian.research import SEED_HITS, gather, host_request

        def build() -> "ModelRequest | None":
            if not question or not question.strip():
                return None  # the tool body says what to change
            desk = shelf.desk(kit.workspace(roots).roots)
            names, excerpts, notes = gather(desk, question, libraries, version, SEED_HITS)
            request, ranked = host_request(desk, question, names, version, excerpts, notes)
            return request if ranked else None  # no evidence: nothing for the host to answer from

        return host_sample_request(ctx, kit, build)

    @server.tool(meta=ALWAYS_LOAD)
    @tool_errors
    async def research(
        question: Annotated[Question, Field(description="What to find out")],
        ctx: Context,
        libraries: Annotated[Names | None, Field(description="Package names or owner/repo")] = None,
        version: Name | None = None,
        thread_id: Annotated[Name | None, Field(description="Continue an earlier answer")] = None,
        roots: HostRoots = None,
        host: Annotated[mcp_types.CreateMessageResult | None, Resolve(ask_host)] = None,
    ) -> dict[str, Any]:
        """How a library works, is used, changed or deprecated: an answer from its real source, with citations."""
        from cadre_librarian.research import research as run

        desk = shelf.desk(kit.workspace(roots).roots)
        await desk.installed.ready()
        return await run(kit, ctx, desk, question=question, libraries=libraries, version=version, thread_id=thread_id,
                         host_sample=host)  # fmt: skip

    @server.tool()
    @tool_errors
    async def read_source(
        target: Annotated[Name, Field(description="Installed package name or owner/repo")],
        path: PathText,
        ref: Name | None = None,
        version: Name | None = None,
        start_line: Line | None = None,
        end_line: Line | None = None,
        roots: HostRoots = None,
    ) -> dict[str, Any]:
        """A file of a package or GitHub repository, with line numbers (no model)."""
        from cadre_librarian.reading import read_source as read

        installed = await shelf.library.installed(kit.workspace(roots).roots).ready()
        return await read(shelf.library, installed, target=target, path=path, ref=ref, version=version,
                          start_line=start_line, end_line=end_line)  # fmt: skip

    @server.tool()
    @tool_errors
    async def find_examples(
        symbol_or_snippet: Question,
        language: Name | None = None,
        limit: Annotated[int, Field(ge=1, le=30)] = 10,
        roots: HostRoots = None,
    ) -> dict[str, Any]:
        """Usage examples from GitHub code search and installed packages (no model)."""
        from cadre_librarian.examples import find_examples as find

        installed = await shelf.library.installed(kit.workspace(roots).roots).ready()
        return await find(shelf.library, installed, symbol_or_snippet=symbol_or_snippet, language=language,
                          limit=limit)  # fmt: skip

    server.add_result_reader()  # read_source and research evidence can be paged; listed last
    return server


class _Shelf:
    """The server's sources, opened on first use."""

    def __init__(self, kit: Kit, library: Any = None):
        self.kit, self._library = kit, library

    @property
    def library(self) -> Any:
        if self._library is None:
            from cadre_core.storage import storage_url
            from cadre_librarian.library import Library

            config = self.kit.config.config
            self._library = Library(
                allow_private_urls=config.librarian.allow_private_urls, storage_url=storage_url(config)
            )
        return self._library

    def desk(self, roots: list[Path]) -> Any:
        from cadre_librarian.evidence import Evidence
        from cadre_librarian.tools import Desk

        return Desk(self.library, self.library.installed(roots), Evidence())
