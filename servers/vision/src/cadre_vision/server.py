"""The vision server: one tool, analyze_visual, routed to the strongest multimodal model."""

# No `from __future__ import annotations`: the tool signature names a local resolver, so its
# annotations must be evaluated here, where `ask_host` is in scope.
from pathlib import Path
from typing import Annotated, Any, Literal

import mcp_types
from mcp.server.mcpserver import Context, Resolve, Sample
from pydantic import Field

from cadre_core.accounting import tool_errors
from cadre_core.arguments import Name, Paths, PathText, Question
from cadre_core.host_sampling import host_sample_request
from cadre_core.mcp_server import ALWAYS_LOAD, CadreServer, HostRoots, build_server
from cadre_vision.about import SERVER

ROLE = SERVER["role"]
NAME = SERVER["script"]
INSTRUCTIONS = (
    "Vision: reads screenshots, PDFs and diagrams with a strong multimodal model and answers with observations. "
    "Use it to check a UI screenshot, read a chart, a spec PDF's pages or an architecture diagram."
)


def create_server(root: Path | None = None) -> CadreServer:
    """The vision server with analyze_visual and generate_image."""
    server = build_server(ROLE, NAME, INSTRUCTIONS, root=root)
    kit = server.kit

    def ask_host(
        files: list[str], question: str, ctx: Context, roots: HostRoots = None, pages: str | None = None
    ) -> Sample | None:
        """Resolver: the host's model looks at the images only when no provider key can serve vision."""
        from cadre_vision.analyze import visual_request

        return host_sample_request(ctx, kit, lambda: visual_request(kit.workspace(roots), files, question, pages))

    @server.tool(meta=ALWAYS_LOAD)
    @tool_errors
    async def analyze_visual(
        files: Annotated[Paths, Field(description="PNG/JPEG/WebP/GIF, PDF, SVG or diagram source paths")],
        question: Question,
        ctx: Context,
        pages: Annotated[Name | None, Field(description="PDF pages, e.g. 1-3,5")] = None,
        roots: HostRoots = None,
        host: Annotated[mcp_types.CreateMessageResult | None, Resolve(ask_host)] = None,
    ) -> dict[str, Any]:
        """Answer a question about screenshots, PDFs or diagrams: answer, observations by region/page, confidence."""
        from cadre_vision.analyze import analyze_visual as analyze

        ws = kit.workspace(roots)
        return await analyze(kit, ctx, ws, files=files, question=question, pages=pages, host_sample=host)

    @server.tool()
    @tool_errors
    async def generate_image(
        prompt: Annotated[Question, Field(description="What to draw: a UI mock-up, an icon")],
        path: Annotated[PathText, Field(description="Workspace path of the .png to write")],
        ctx: Context,
        size: Literal["1024x1024", "1024x1536", "1536x1024"] = "1024x1024",
        roots: HostRoots = None,
    ) -> dict[str, Any]:
        """Draw a PNG with an image model into the workspace (never replacing a file): path, size, model."""
        from cadre_vision.generate import generate_image as generate

        return await generate(kit, ctx, kit.workspace(roots), prompt=prompt, path=path, size=size)

    return server
