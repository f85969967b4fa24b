"""Anthropic Messages API."""

from __future__ import annotations

from typing import Any

from cadre_core.models.base import (
    Attachment,
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    ProviderModel,
    ToolCall,
    Usage,
)
from cadre_core.models.status import bad_response, sdk_errors

_FINISH: dict[str | None, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_use",
    "refusal": "refusal",
}


class AnthropicModel(ProviderModel):
    provider = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    sdk_modules = ("anthropic",)
    warm_reply = {  # noqa: RUF012 - read only
        "id": "msg_warm", "type": "message", "role": "assistant", "model": "warm-up",
        "content": [{"type": "text", "text": '{"a": "b"}'}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }  # fmt: skip

    def make_client(self, api_key: str) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=api_key, base_url=self.base_url, timeout=self.timeout_s, http_client=self.http_client, max_retries=0
        )

    async def request(self, request: ModelRequest) -> ModelResponse:
        import anthropic

        with sdk_errors(anthropic, self):
            message = await self.client.messages.create(**self.build_params(request))
        return self.parse(message, request)

    def build_params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": request.output_limit,
            "messages": _messages(request.messages),
        }
        if request.system:
            params["system"] = request.system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
            ]
            if not request.tools_allowed:
                params["tool_choice"] = {"type": "none"}
        output_config: dict[str, Any] = {}
        if request.effort:
            params["thinking"] = {"type": "adaptive"}
            output_config["effort"] = request.effort
        if request.output_schema is not None:
            output_config["format"] = {"type": "json_schema", "schema": request.output_schema}
        if output_config:
            params["output_config"] = output_config
        return params

    def parse(self, message: Any, request: ModelRequest) -> ModelResponse:
        content = getattr(message, "content", None)
        if not isinstance(content, list) or getattr(message, "usage", None) is None:
            raise bad_response(
                "malformed response: no content or usage",
                provider=self.provider,
                model=self.model_name,
            )
        texts, calls = [], []
        for block in content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(block.id, block.name, dict(block.input or {})))
        finish = _FINISH.get(message.stop_reason, "stop")
        text = "".join(texts)
        if not text.strip() and not calls and finish not in ("refusal", "length"):
            raise bad_response("empty content", provider=self.provider, model=self.model_name)
        u = message.usage
        cache_read = u.cache_read_input_tokens or 0
        cache_write = u.cache_creation_input_tokens or 0
        details = getattr(u, "output_tokens_details", None)
        usage = Usage(
            input_tokens=(u.input_tokens or 0) + cache_read + cache_write,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=u.output_tokens or 0,
            reasoning_tokens=(getattr(details, "thinking_tokens", None) or 0) if details else 0,
        )
        return ModelResponse(
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=usage,
            model=self.name,
            response_id=message.id,
            replay={
                "provider": self.provider,
                "content": [b.model_dump(exclude_none=True) for b in content],
            },
        ).parse_output(request)


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id,
                "content": m.text,
                "is_error": m.is_error,
            }
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.role == "assistant":
            if m.replay and m.replay.get("provider") == "anthropic":
                out.append({"role": "assistant", "content": m.replay["content"]})
                continue
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks or m.text})
        elif m.attachments:
            out.append({"role": "user", "content": [*map(_attachment_block, m.attachments), _text_block(m.text)]})
        else:
            out.append({"role": "user", "content": m.text})
    return out


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _attachment_block(a: Attachment) -> dict[str, Any]:
    """An image or PDF as a base64 content block, placed before the text as Anthropic advises
    (docs.claude.com/en/docs/build-with-claude/vision, /pdf-support)."""
    kind = "image" if a.is_image else "document"
    return {"type": kind, "source": {"type": "base64", "media_type": a.media_type, "data": a.base64}}
