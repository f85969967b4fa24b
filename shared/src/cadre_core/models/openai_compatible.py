"""Chat Completions at any base URL: Ollama, vLLM, LM Studio, OpenRouter."""

from __future__ import annotations

import json
from typing import Any

from cadre_core.models.base import (
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    ToolCall,
    Usage,
)
from cadre_core.models.openai import OpenAIModel, _arguments, is_strict_schema
from cadre_core.models.status import bad_response, sdk_errors

_FINISH: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


class OpenAICompatibleModel(OpenAIModel):
    provider = "openai_compatible"
    key_env = "OPENAI_COMPATIBLE_API_KEY"

    def __init__(self, model_name: str, *, api_key: str | None, **kw: Any):
        super().__init__(model_name, api_key=api_key or "not-needed", **kw)

    async def request(self, request: ModelRequest) -> ModelResponse:
        import openai

        with sdk_errors(openai, self):
            completion = await self.client.chat.completions.create(**self.build_params(request))
        return self.parse(completion, request)

    def build_params(self, request: ModelRequest) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [{"role": "system", "content": request.system}] if request.system else []
        messages += _chat_messages(request.messages)
        params: dict[str, Any] = {
            "model": self.model_name,
            "messages": messages,
            "max_tokens": request.output_limit,
        }
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
            if not request.tools_allowed:
                params["tool_choice"] = "none"
        if request.effort:
            params["reasoning_effort"] = request.effort
        if request.output_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.output_schema,
                    "strict": is_strict_schema(request.output_schema),
                },
            }
        return params

    def parse(self, completion: Any, request: ModelRequest) -> ModelResponse:
        choices = getattr(completion, "choices", None)
        if not isinstance(choices, list) or not choices or choices[0].message is None:
            raise bad_response("malformed response: no choices", provider=self.provider, model=self.model_name)
        choice = choices[0]
        message = choice.message
        calls = [ToolCall(c.id, c.function.name, _arguments(c.function.arguments)) for c in message.tool_calls or []]
        finish = _FINISH.get(choice.finish_reason, "stop")
        text = message.content or ""
        if message.refusal:
            finish, text = "refusal", message.refusal
        if not text.strip() and not calls and finish == "stop":
            raise bad_response("empty content", provider=self.provider, model=self.model_name)
        u = completion.usage
        usage = Usage()
        if u is not None:
            pd, cd = u.prompt_tokens_details, u.completion_tokens_details
            usage = Usage(
                input_tokens=u.prompt_tokens or 0,
                cache_read_tokens=(pd.cached_tokens or 0) if pd else 0,
                cache_write_tokens=(getattr(pd, "cache_write_tokens", None) or 0) if pd else 0,
                output_tokens=u.completion_tokens or 0,
                reasoning_tokens=(cd.reasoning_tokens or 0) if cd else 0,
            )
        return ModelResponse(
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=usage,
            model=self.name,
            response_id=completion.id,
        ).parse_output(request)


def _chat_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text})
        elif m.role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": m.text or None}
            if m.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                    }
                    for c in m.tool_calls
                ]
            out.append(entry)
        else:
            out.append({"role": "user", "content": m.text})
    return out
