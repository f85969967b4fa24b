"""Google Gemini through google-genai."""

from __future__ import annotations

import secrets
from typing import Any

from cadre_core import errors
from cadre_core.models.base import (
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    ProviderModel,
    ToolCall,
    Usage,
)
from cadre_core.models.status import bad_response, connection_failed, error_for_status

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MODEL_ARMOR": "content_filter",
}


class GoogleModel(ProviderModel):
    provider = "google"
    key_env = "GEMINI_API_KEY"
    sdk_modules = ("google.genai", "google.genai.types", "google.genai.errors", "httpx2")
    warm_reply = {  # noqa: RUF012 - read only
        "candidates": [{"content": {"role": "model", "parts": [{"text": '{"a": "b"}'}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
    }

    def __init__(self, model_name: str, **kw: Any):
        super().__init__(model_name.removeprefix("models/"), **kw)

    def make_client(self, api_key: str) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(
            base_url=self.base_url,
            timeout=int(self.timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_async_client=self.http_client,
        )
        return genai.Client(api_key=api_key, http_options=options)

    async def request(self, request: ModelRequest) -> ModelResponse:
        import httpx2
        from google.genai import errors as genai_errors

        kw: errors.ModelName = {"provider": self.provider, "model": self.model_name}
        try:
            response = await self.client.aio.models.generate_content(
                model=self.model_name,
                contents=_contents(request.messages),
                config=self.build_config(request),
            )
        except genai_errors.APIError as exc:
            message = exc.message or str(exc)
            if "API_KEY_INVALID" in str(exc.details):
                message += " (API_KEY_INVALID)"
            headers = dict(exc.response.headers) if getattr(exc, "response", None) is not None else {}
            if "retry-after" not in {k.lower() for k in headers} and (delay := _retry_delay(exc.details)):
                headers["retry-after"] = delay
            raise error_for_status(exc.code, message, env_var=self.key_env, headers=headers, **kw) from exc
        except httpx2.TimeoutException as exc:
            raise errors.ModelTimeoutError("request timed out", **kw) from exc
        except httpx2.TransportError as exc:
            raise connection_failed(exc, exc, **kw) from exc
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep to decode
            raise bad_response(f"malformed response: {exc}", **kw) from exc
        return self.parse(response, request)

    def build_config(self, request: ModelRequest) -> Any:
        from google.genai import types

        config: dict[str, Any] = {
            "max_output_tokens": request.output_limit,
            "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
        }
        if request.system:
            config["system_instruction"] = request.system
        if request.tools:
            config["tools"] = [
                types.Tool(
                    function_declarations=[
                        types.FunctionDeclaration(
                            name=t.name,
                            description=t.description,
                            parameters_json_schema=t.parameters,
                        )
                        for t in request.tools
                    ]
                )
            ]
            if not request.tools_allowed:
                config["tool_config"] = types.ToolConfig(
                    function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.NONE)
                )
        if request.effort:
            config["thinking_config"] = types.ThinkingConfig(thinking_level=types.ThinkingLevel(request.effort.upper()))
        if request.output_schema is not None:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = request.output_schema
        return types.GenerateContentConfig(**config)

    def parse(self, response: Any, request: ModelRequest) -> ModelResponse:
        kw: errors.ModelName = {"provider": self.provider, "model": self.model_name}
        feedback = getattr(response, "prompt_feedback", None)
        if not response.candidates:
            if feedback is not None and feedback.block_reason:
                raise errors.ContentFilterError(f"prompt blocked: {_enum_name(feedback.block_reason)}", **kw)
            raise bad_response("malformed response: no candidates", **kw)
        candidate = response.candidates[0]
        parts = (candidate.content.parts if candidate.content else None) or []
        texts, calls = [], []
        for part in parts:
            if part.function_call is not None:
                call = part.function_call
                call_id = call.id or _GENERATED_ID + secrets.token_hex(6)
                calls.append(ToolCall(call_id, call.name, dict(call.args or {})))
            elif part.text and not part.thought:
                texts.append(part.text)
        reason = _enum_name(candidate.finish_reason) if candidate.finish_reason else "STOP"
        finish: FinishReason = "tool_use" if calls else _FINISH.get(reason, "stop")
        text = "".join(texts)
        if not text.strip() and not calls and finish == "stop":
            raise bad_response(f"empty content (finish reason {reason})", **kw)
        meta = response.usage_metadata
        usage = Usage()
        if meta is not None:
            thoughts = meta.thoughts_token_count or 0
            usage = Usage(
                input_tokens=meta.prompt_token_count or 0,
                cache_read_tokens=meta.cached_content_token_count or 0,
                output_tokens=(meta.candidates_token_count or 0) + thoughts,
                reasoning_tokens=thoughts,
            )
        replay = None
        if candidate.content is not None:
            # mode="json": thought signatures are bytes, and threads are stored as JSON
            replay = {
                "provider": self.provider,
                "content": candidate.content.model_dump(mode="json", exclude_none=True),
            }
        return ModelResponse(
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=usage,
            model=self.name,
            response_id=getattr(response, "response_id", None),
            replay=replay,
        ).parse_output(request)


def _retry_delay(details: Any) -> str | None:
    """Seconds from a `google.rpc.RetryInfo` in an error body (`"retryDelay": "17s"`), if any."""
    error = details.get("error", details) if isinstance(details, dict) else None
    for item in (error or {}).get("details", []) if isinstance(error, dict) else []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            return delay[:-1]
    return None


_GENERATED_ID = "cadre_call_"
"""Prefix of ids made up for function calls that came without one; never sent back."""


def _sent_id(call_id: str | None) -> str | None:
    return None if call_id is None or call_id.startswith(_GENERATED_ID) else call_id


def _enum_name(value: Any) -> str:
    return getattr(value, "name", None) or str(value)


def _contents(messages: list[Message]) -> list[Any]:
    from google.genai import types

    out: list[Any] = []
    for m in messages:
        if m.role == "tool":
            part = types.Part(
                function_response=types.FunctionResponse(
                    id=_sent_id(m.tool_call_id),
                    name=m.tool_name or "tool",
                    response={"error": m.text} if m.is_error else {"output": m.text},
                )
            )
            if out and out[-1].role == "user" and out[-1].parts and out[-1].parts[0].function_response:
                out[-1].parts.append(part)
            else:
                out.append(types.Content(role="user", parts=[part]))
        elif m.role == "assistant":
            if m.replay and m.replay.get("provider") == "google":
                out.append(types.Content.model_validate(m.replay["content"]))
                continue
            parts = [types.Part(text=m.text)] if m.text else []
            parts += [
                types.Part(function_call=types.FunctionCall(id=_sent_id(c.id), name=c.name, args=c.arguments))
                for c in m.tool_calls
            ]
            out.append(types.Content(role="model", parts=parts))
        else:
            # Images and PDFs go inline (ai.google.dev/gemini-api/docs/image-understanding, /document-processing)
            inline = [types.Part(inline_data=types.Blob(mime_type=a.media_type, data=a.data)) for a in m.attachments]
            out.append(types.Content(role="user", parts=[*inline, types.Part(text=m.text)]))
    return out
