"""The host's own model, through MCP sampling.

MCP 2026-07-28 has no mid-call server-to-client requests: a tool asks for a
sample through a `Resolve` parameter whose resolver returns `Sample`, answered
before the tool body runs. Legacy sessions can also sample mid-call. The
server kit puts a `HostSampler` for the current call in `current_sampler`;
`SamplingModel` uses it, and raises `SamplingUnavailableError` when the host
cannot sample.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Literal, Protocol

from cadre_core.errors import NoHostSamplingError
from cadre_core.models.base import Attachment, FinishReason, Model, ModelRequest, ModelResponse, Usage
from cadre_core.structured import schema_instruction

HOST_MODEL = "host"
_STOP: dict[str, FinishReason] = {
    "endTurn": "stop",
    "stopSequence": "stop",
    "maxTokens": "length",
    "toolUse": "tool_use",
}


class HostSampler(Protocol):
    async def sample(self, request: ModelRequest) -> ModelResponse: ...


current_sampler: ContextVar[HostSampler | None] = ContextVar("cadre_host_sampler", default=None)


class SamplingModel(Model):
    """Asks the MCP host's model. No key; no tools; JSON output is requested in the prompt."""

    provider = "sampling"
    supports_tools = False

    def __init__(self, model_name: str = HOST_MODEL):
        super().__init__(model_name)

    async def request(self, request: ModelRequest) -> ModelResponse:
        sampler = current_sampler.get()
        if sampler is None:
            raise NoHostSamplingError(
                "no MCP host is attached to this call", provider=self.provider, model=self.model_name
            )
        return await sampler.sample(request)


def to_sample_args(request: ModelRequest) -> dict[str, Any]:
    """Keyword arguments for `mcp.server.mcpserver.Sample` (or `create_message`)."""
    import mcp_types as types

    system = request.system or ""
    if request.output_schema is not None:
        system += "\n\n" + schema_instruction(request.output_schema)
    turns: list[tuple[Literal["user", "assistant"], str, list[Attachment]]] = []
    for m in request.messages:
        role: Literal["user", "assistant"] = "assistant" if m.role == "assistant" else "user"
        text = m.text if m.role != "tool" else f"[tool {m.tool_name} result]\n{m.text}"
        if turns and turns[-1][0] == role:
            turns[-1] = (role, turns[-1][1] + "\n\n" + text, turns[-1][2] + m.attachments)
            continue
        turns.append((role, text, list(m.attachments)))
    messages = [types.SamplingMessage(role=r, content=_content(t, a)) for r, t, a in turns]
    return {
        "messages": messages,
        "max_tokens": request.output_limit,
        "system_prompt": system.strip() or None,
    }


def _content(text: str, attachments: list[Attachment]) -> Any:
    """Text alone, or a list with the images as `ImageContent` (MCP sampling takes text, image and
    audio only: a document is named in the text instead)."""
    import mcp_types as types

    skipped = [a.name or a.media_type for a in attachments if not a.is_image]
    if skipped:
        text += "\n\n[not sent: the host's model takes images only: " + ", ".join(skipped) + "]"
    body = types.TextContent(type="text", text=text)
    images = [
        types.ImageContent(type="image", data=a.base64, mime_type=a.media_type) for a in attachments if a.is_image
    ]
    return [*images, body] if images else body


def from_sample_result(result: Any, request: ModelRequest) -> ModelResponse:
    """A `CreateMessageResult` as a `ModelResponse`."""
    content = result.content
    blocks = content if isinstance(content, list) else [content]
    text = "".join(getattr(b, "text", "") or "" for b in blocks)
    finish = _STOP.get(str(result.stop_reason or "endTurn"), "stop")
    return ModelResponse(
        text=text,
        finish_reason=finish,
        usage=Usage(),
        model=f"sampling:{HOST_MODEL}",
        response_id=getattr(result, "model", None),
    ).parse_output(request)
