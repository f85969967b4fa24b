"""analyze_visual: the request (question, files as attachments or text) and the structured answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cadre_core.errors import CadreError
from cadre_core.models.base import Message, ModelRequest, ModelResponse
from cadre_core.structured import strict_schema, validator
from cadre_vision.fitting import adapter
from cadre_vision.visuals import MAX_FILES, Visual, load, parse_pages

if TYPE_CHECKING:
    import mcp_types
    from mcp.server.mcpserver import Context

    from cadre_core.kit import Kit
    from cadre_core.workspace import Workspace

SYSTEM = (
    "You analyse screenshots, PDFs and diagrams for a coding agent. Answer the question from what the files "
    "show; name where you saw each thing (a region such as 'top-right toolbar', or 'page 3'). Say what you "
    "cannot read rather than guess."
)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Observation(_Closed):
    what: str = Field(min_length=1, description="What is seen")
    region_or_page: str = Field(description="Where: file and region, or page")


class VisualAnswer(_Closed):
    answer: str = Field(min_length=1, description="Markdown answer to the question")
    observations: list[Observation]
    confidence: Literal["low", "medium", "high"]


VISUAL_SCHEMA = strict_schema(VisualAnswer)


def visual_validator() -> Callable[[ModelResponse], None]:
    """Validates a VisualAnswer; the host model's prose is kept as a low-confidence answer."""
    return validator(VisualAnswer, host_prose=lambda text: {"answer": text, "observations": [], "confidence": "low"})


def visual_request(ws: Workspace, files: list[str], question: str, pages: str | None) -> ModelRequest:
    """The request: the question, the page selection, text sources inline, images and PDFs attached."""
    if not question.strip():
        raise CadreError("the question is empty; say what to look for in the files")
    if not files:
        raise CadreError("no files; pass one or more PNG, JPEG, WebP, GIF, PDF or SVG paths")
    if len(files) > MAX_FILES:
        raise CadreError(f"{len(files)} files; pass at most {MAX_FILES}")
    visuals = [load(ws, f) for f in dict.fromkeys(files)]
    parts = [f"Question:\n{question}"]
    wanted = None
    if pages is not None:
        wanted = parse_pages(pages)
        pdfs = [v for v in visuals if v.kind == "pdf"]
        if not pdfs:
            raise CadreError("pages applies to PDFs; none of the files is a PDF")
        _check_pages(pdfs, wanted)
        parts.append(f"Look only at PDF pages {pages} (the first page is 1); ignore the others.")
    for v in visuals:
        if v.attachment is None:
            parts.append(f"{v.kind.upper()} source of {v.path}:\n{v.text}")
    listed = [_describe(v) for v in visuals if v.attachment is not None]
    if listed:
        parts.append("Attached, in order:\n" + "\n".join(f"- {d}" for d in listed))
    attachments = [v.attachment for v in visuals if v.attachment is not None]
    return ModelRequest(
        [Message("user", "\n\n".join(parts), attachments=attachments)],
        system=SYSTEM,
        output_schema=VISUAL_SCHEMA,
        schema_name="visual_answer",
        validate=visual_validator(),
        adapt=adapter(wanted),
    )


def _check_pages(pdfs: list[Visual], wanted: list[int]) -> None:
    counts = [v.pages for v in pdfs]
    if all(counts) and max(wanted) > max(c or 0 for c in counts):
        raise CadreError(
            f"pages: page {max(wanted)} asked for, but the PDFs have at most {max(c or 0 for c in counts)}"
        )


def _describe(v: Visual) -> str:
    if v.size:
        return f"{v.path} ({v.size[0]}x{v.size[1]} px)"
    return f"{v.path} (PDF, {v.pages} pages)" if v.pages else f"{v.path} (PDF)"


async def analyze_visual(
    kit: Kit,
    ctx: Context | None,
    ws: Workspace,
    *,
    files: list[str],
    question: str,
    pages: str | None = None,
    host_sample: mcp_types.CreateMessageResult | None = None,
) -> dict[str, Any]:
    """Ask the vision role; the structured answer with the model (`tool_errors` adds its cost)."""
    import anyio

    from cadre_core.results import shown_model

    request = await anyio.to_thread.run_sync(lambda: visual_request(ws, files, question, pages))
    response = await kit.call_model(ctx, request, tool="analyze_visual", host_sample=host_sample)
    answer = VisualAnswer.model_validate(response.output)
    notes = list(response.warnings)
    return {**answer.model_dump(), "model": shown_model(response.model), **({"notes": notes} if notes else {})}
