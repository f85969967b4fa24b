"""OpenAI Responses API."""

from __future__ import annotations

import json
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


class OpenAIModel(ProviderModel):
    provider = "openai"
    key_env = "OPENAI_API_KEY"
    sdk_modules = ("openai",)
    warm_reply: dict[str, Any] | None = {  # noqa: RUF012 - read only
        "id": "resp_warm", "object": "response", "created_at": 0, "status": "completed", "model": "warm-up",
        "output": [{"type": "message", "id": "msg_warm", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": '{"a": "b"}', "annotations": []}]}],
        "usage": {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2},
    }  # fmt: skip

    def make_client(self, api_key: str) -> Any:
        import openai

        return openai.AsyncOpenAI(
            api_key=api_key, base_url=self.base_url, timeout=self.timeout_s, http_client=self.http_client, max_retries=0
        )

    async def request(self, request: ModelRequest) -> ModelResponse:
        import openai

        with sdk_errors(openai, self):
            response = await self.client.responses.create(**self.build_params(request))
        return self.parse(response, request)

    def build_params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model_name,
            "input": _input_items(request.messages),
            "max_output_tokens": request.output_limit,
        }
        if request.system:
            params["instructions"] = request.system
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                    "strict": is_strict_schema(t.parameters),
                }
                for t in request.tools
            ]
            if not request.tools_allowed:
                params["tool_choice"] = "none"
        if request.effort:
            params["reasoning"] = {"effort": request.effort}
        if request.output_schema is not None:
            params["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": request.schema_name,
                    "schema": request.output_schema,
                    "strict": is_strict_schema(request.output_schema),
                }
            }
        return params

    def parse(self, response: Any, request: ModelRequest) -> ModelResponse:
        output = getattr(response, "output", None)
        if not isinstance(output, list) or getattr(response, "usage", None) is None:
            raise bad_response(
                "malformed response: no output or usage",
                provider=self.provider,
                model=self.model_name,
            )
        if response.status == "failed":
            detail = response.error.message if response.error else "response failed"
            raise bad_response(detail, provider=self.provider, model=self.model_name)
        texts, calls, refused = [], [], False
        for item in output:
            if item.type == "message":
                for part in item.content:
                    if part.type == "output_text":
                        texts.append(part.text)
                    elif part.type == "refusal":
                        refused = True
                        texts.append(part.refusal)
            elif item.type == "function_call":
                calls.append(ToolCall(item.call_id, item.name, _arguments(item.arguments)))
        finish: FinishReason = "stop"
        reason = response.incomplete_details.reason if response.incomplete_details else None
        if refused:
            finish = "refusal"
        elif reason == "content_filter":
            finish = "content_filter"
        elif response.status == "incomplete":
            finish = "length"
        elif calls:
            finish = "tool_use"
        text = "".join(texts)
        if not text.strip() and not calls and finish == "stop":
            raise bad_response("empty content", provider=self.provider, model=self.model_name)
        u = response.usage
        in_details, out_details = u.input_tokens_details, u.output_tokens_details
        usage = Usage(
            input_tokens=u.input_tokens or 0,
            cache_read_tokens=(in_details.cached_tokens or 0) if in_details else 0,
            cache_write_tokens=(getattr(in_details, "cache_write_tokens", None) or 0) if in_details else 0,
            output_tokens=u.output_tokens or 0,
            reasoning_tokens=(out_details.reasoning_tokens or 0) if out_details else 0,
        )
        return ModelResponse(
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=usage,
            model=self.name,
            response_id=response.id,
            replay={
                "provider": self.provider,
                "items": [o.model_dump(exclude_none=True) for o in output],
            },
        ).parse_output(request)


def _arguments(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except (ValueError, RecursionError):  # too deeply nested is no JSON either
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_value": value}


def _input_items(messages: list[Message]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            items.append({"type": "function_call_output", "call_id": m.tool_call_id, "output": m.text})
        elif m.role == "assistant":
            if m.replay and m.replay.get("provider") == "openai":
                items.extend(m.replay["items"])
                continue
            if m.text:
                items.append({"role": "assistant", "content": m.text})
            items += [
                {
                    "type": "function_call",
                    "call_id": c.id,
                    "name": c.name,
                    "arguments": json.dumps(c.arguments),
                }
                for c in m.tool_calls
            ]
        elif m.attachments:
            parts = [{"type": "input_text", "text": m.text}, *map(_input_part, m.attachments)]
            items.append({"role": "user", "content": parts})
        else:
            items.append({"role": "user", "content": m.text})
    return items


def _input_part(a: Attachment) -> dict[str, Any]:
    """An image as `input_image` with a data URL, a PDF as `input_file` with `file_data`
    (platform.openai.com/docs/guides/images-vision, /pdf-files)."""
    url = f"data:{a.media_type};base64,{a.base64}"
    if a.is_image:
        return {"type": "input_image", "image_url": url, "detail": "auto"}
    return {"type": "input_file", "filename": a.name or "document.pdf", "file_data": url}


def is_strict_schema(schema: dict[str, Any]) -> bool:
    """True when OpenAI's strict mode accepts the schema: closed objects, every property required."""
    if not all(is_strict_schema(d) for d in schema.get("$defs", {}).values()):
        return False
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(props):
            return False
        return all(is_strict_schema(p) for p in props.values())
    if "items" in schema and isinstance(schema["items"], dict):
        return is_strict_schema(schema["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            return all(is_strict_schema(s) for s in schema[key])
    return True
