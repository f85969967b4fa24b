"""Chat Completions at any base URL: Ollama, vLLM, LM Studio, llama.cpp, OpenRouter.

Local servers accept different subsets of the API, so this model finds out what an endpoint takes and
remembers it per (base URL, model) (`endpoints.py`):
- structured answers: `response_format` json_schema, else json_object with the schema (also in the prompt),
  else the schema in the prompt only;
- tools: native `tools`, else a text protocol: the tool list goes in the system prompt and the model replies
  with a JSON block `{"tool_calls": [{"name": ..., "arguments": {...}}]}`, which is parsed into tool calls;
  results come back as user messages. The tool loop is unchanged, so reading still works on a model or
  server without tool calling (a bare "answer without tools" would leave the loop blind).
A request is sent again in the next form only when the server's error names the refused feature (a
transient 500 stays an error). `[providers.openai_compatible] structured_output` and `tools` pin the form;
a pinned form the server refuses fails with an error naming the setting.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from cadre_core import errors
from cadre_core.models import endpoints
from cadre_core.models.base import (
    Attachment,
    FinishReason,
    Message,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolDefinition,
    Usage,
    parse_json_text,
)
from cadre_core.models.endpoints import Accepts, StructuredOutput
from cadre_core.models.openai import OpenAIModel, _arguments, is_strict_schema
from cadre_core.models.status import bad_response, sdk_errors
from cadre_core.structured import schema_instruction

_FINISH: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}
SETTING = "[providers.openai_compatible]"
_REFUSED_TOOLS = re.compile(r"(?=.*tool).*(support|requir|jinja|enable|unknown|invalid|not allowed)", re.I | re.S)
"""Ollama: "<model> does not support tools" (400); vLLM: '"auto" tool choice requires
--enable-auto-tool-choice and --tool-call-parser to be set' (400); llama.cpp without --jinja:
"tools param requires --jinja flag" (500)."""
_REFUSED_FORMAT = re.compile(r"response_format|json_schema|json_object|response format", re.I)
"""llama-cpp-python: "... 'response_format', 'type' ... Input should be 'text' or 'json_object'" (500);
LM Studio: "'response_format.type' must be 'json_schema' or 'text'" (400); older llama.cpp:
'response_format type must be one of "text" or "json_object"' (400)."""


class OpenAICompatibleModel(OpenAIModel):
    provider = "openai_compatible"
    key_env = "OPENAI_COMPATIBLE_API_KEY"
    warm_reply = None  # a local server's reply shapes vary; its first call builds the SDK's types

    def __init__(
        self,
        model_name: str,
        *,
        api_key: str | None,
        structured_output: StructuredOutput | None = None,
        tools: bool | None = None,
        **kw: Any,
    ):
        super().__init__(model_name, api_key=api_key or "not-needed", **kw)
        self.pinned = (structured_output, tools)

    @property
    def endpoint(self) -> str:
        return str(self.client.base_url)

    def accepts(self) -> Accepts:
        """What this endpoint takes: the pinned settings over what was found out."""
        found = endpoints.accepts(self.endpoint, self.model_name)
        output, tools = self.pinned
        return Accepts(output or found.structured_output, found.tools if tools is None else tools)

    async def request(self, request: ModelRequest) -> ModelResponse:
        import openai

        for tries_left in range(len(endpoints.STRUCTURED_OUTPUTS), -1, -1):  # each refusal is one step down
            form = self.accepts()
            params = self.build_params(request, form)
            try:
                with sdk_errors(openai, self):
                    completion = await self.client.chat.completions.create(**params)
            except errors.ModelError as exc:
                if not tries_left:
                    raise
                self.degrade(exc, params, form)
                continue
            return self.parse(completion, request, text_tools=bool(request.tools) and not form.tools)
        raise AssertionError("unreachable")  # pragma: no cover

    def degrade(self, exc: errors.ModelError, params: dict[str, Any], form: Accepts) -> None:
        """Remember the next form to try when `exc` says the server refused one in `params`; else re-raise."""
        if exc.status_code not in (400, 422, 500):
            raise exc
        found = endpoints.accepts(self.endpoint, self.model_name)
        if "tools" in params and _REFUSED_TOOLS.search(exc.detail[:2000]):
            if self.pinned[1] is not None:
                raise self.refused(exc, "tools = false (the tool list then goes in the prompt)")
            endpoints.remember(self.endpoint, self.model_name, Accepts(found.structured_output, False))
            return
        if "response_format" in params and _REFUSED_FORMAT.search(exc.detail[:2000]):
            if self.pinned[0] is not None:
                others = [f'"{m}"' for m in endpoints.STRUCTURED_OUTPUTS if m != form.structured_output]
                raise self.refused(exc, f"structured_output = {' or '.join(others)}")
            following = endpoints.STRUCTURED_OUTPUTS.index(form.structured_output) + 1
            endpoints.remember(
                self.endpoint, self.model_name, Accepts(endpoints.STRUCTURED_OUTPUTS[following], found.tools)
            )
            return
        raise exc

    def refused(self, exc: errors.ModelError, change: str) -> errors.BadRequestError:
        return errors.BadRequestError(
            f"{exc.detail} (the server at {self.endpoint} refused this; set {SETTING} {change} in cadre.toml, "
            "or remove the setting to let Cadre find out what the server takes)",
            provider=self.provider,
            model=self.model_name,
            status_code=exc.status_code,
        )

    def build_params(self, request: ModelRequest, form: Accepts | None = None) -> dict[str, Any]:
        form = form or Accepts()
        text_tools = bool(request.tools) and not form.tools
        offering_text_tools = text_tools and request.tools_allowed
        system = request.system or ""
        if text_tools:
            system += "\n\n" + tool_protocol(request.tools, allowed=request.tools_allowed)
        schema = request.output_schema
        if schema is not None and (offering_text_tools or form.structured_output != "json_schema"):
            system += "\n\n" + schema_instruction(schema)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system.strip()}] if system.strip() else []
        messages += _text_protocol_messages(request.messages) if text_tools else _chat_messages(request.messages)
        params: dict[str, Any] = {
            "model": self.model_name,
            "messages": messages,
            "max_tokens": request.output_limit,
        }
        if request.tools and form.tools:
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
        if schema is not None and form.structured_output == "json_schema" and not offering_text_tools:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": schema, "strict": is_strict_schema(schema)},
            }
        elif schema is not None and form.structured_output == "json_object":
            # llama.cpp and llama-cpp-python turn `schema` into a grammar; a tool-call block must fit too.
            params["response_format"] = (
                {"type": "json_object"} if offering_text_tools else {"type": "json_object", "schema": schema}
            )
        return params

    def parse(self, completion: Any, request: ModelRequest, *, text_tools: bool = False) -> ModelResponse:
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
        if text_tools and request.tools_allowed and not calls and (calls := text_tool_calls(text, request.tools)):
            finish, text = "tool_use", ""
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
        elif m.attachments:
            out.append({"role": "user", "content": [{"type": "text", "text": m.text}, *map(_chat_part, m.attachments)]})
        else:
            out.append({"role": "user", "content": m.text})
    return out


def _chat_part(a: Attachment) -> dict[str, Any]:
    """Chat Completions content parts: `image_url` with a data URL, `file` with `file_data` for a PDF
    (platform.openai.com/docs/api-reference/chat/create; Ollama and vLLM take the image form)."""
    url = f"data:{a.media_type};base64,{a.base64}"
    if a.is_image:
        return {"type": "image_url", "image_url": {"url": url}}
    return {"type": "file", "file": {"filename": a.name or "document.pdf", "file_data": url}}


def tool_protocol(tools: list[ToolDefinition], *, allowed: bool) -> str:
    """The system-prompt part that stands in for native tools."""
    if not allowed:
        return "Tools are no longer available: answer now from what you have read, without a tool_calls block."
    listing = "\n".join(f"- {t.name}: {t.description} Arguments: {json.dumps(t.parameters)}" for t in tools)
    return (
        "You can call tools. To call one or more, reply with only this JSON object and nothing else:\n"
        '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}\n'
        "Their results come back in the next message. Once you know enough, answer without a tool_calls block.\n"
        f"Tools:\n{listing}"
    )


def text_tool_calls(text: str, tools: list[ToolDefinition]) -> list[ToolCall]:
    """Tool calls from a text-protocol reply: `{"tool_calls": [...]}` or one `{"name", "arguments"}` object.
    Only tools that were offered count; anything else is an answer."""
    value = parse_json_text(text) if "{" in text else None
    if not isinstance(value, dict):
        return []
    items = value.get("tool_calls") if "tool_calls" in value else [value]
    names = {t.name for t in tools}
    calls = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") in names and isinstance(item.get("arguments", {}), dict):
            calls.append(ToolCall(f"call_{secrets.token_hex(6)}", item["name"], dict(item.get("arguments") or {})))
    return calls


def _text_protocol_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """The history without tool roles: calls as the assistant's JSON block, results as user messages."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant":
            block = {"tool_calls": [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls]}
            text = "\n".join(p for p in (m.text, json.dumps(block) if m.tool_calls else "") if p)
            out.append({"role": "assistant", "content": text})
            continue
        if m.role == "tool":
            outcome = "failed" if m.is_error else "returned"
            text = f"Tool {m.tool_name} ({m.tool_call_id}) {outcome}:\n{m.text}"
        else:
            text = m.text
        if out and out[-1]["role"] == "user":
            out[-1]["content"] += "\n\n" + text  # some chat templates need user and assistant to alternate
        else:
            out.append({"role": "user", "content": text})
    return out
