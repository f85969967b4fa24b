"""Fakes for tests, shipped with the library: `TestModel` and `FunctionModel`."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from cadre_core.models.base import FinishReason, Model, ModelRequest, ModelResponse, ToolCall, Usage


class TestModel(Model):
    """Answers every request the same way and records what it was sent.

    With an `output_schema` and no `output`, it returns a minimal object that
    fits the schema.
    """

    __test__ = False
    provider = "test"

    def __init__(
        self,
        text: str = "ok",
        *,
        model_name: str = "test",
        output: Any = None,
        tool_calls: list[ToolCall] | None = None,
        usage: Usage | None = None,
        finish_reason: FinishReason = "stop",
        delay_s: float = 0.0,
        error: Exception | None = None,
    ):
        super().__init__(model_name)
        self.text, self.output, self.tool_calls = text, output, tool_calls or []
        self.usage = usage or Usage(input_tokens=10, output_tokens=5)
        self.finish_reason, self.delay_s, self.error = finish_reason, delay_s, error
        self.requests: list[ModelRequest] = []

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if self.delay_s:
            await anyio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        output = self.output
        if request.output_schema is not None and output is None:
            output = example_for_schema(request.output_schema)
        text = json.dumps(output) if output is not None else self.text
        return ModelResponse(
            text=text,
            output=output,
            tool_calls=list(self.tool_calls),
            finish_reason="tool_use" if self.tool_calls else self.finish_reason,
            usage=self.usage,
            model=self.name,
        )


ModelFunction = Callable[[ModelRequest, "FunctionModel"], "Awaitable[ModelResponse | str] | ModelResponse | str"]


class FunctionModel(Model):
    """Answers with a function of the request, for scripted multi-turn tests."""

    provider = "function"

    def __init__(self, function: ModelFunction, *, model_name: str = "function", provider: str | None = None):
        super().__init__(model_name)
        if provider:
            self.provider = provider
        self.function = function
        self.requests: list[ModelRequest] = []

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        result = self.function(request, self)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str):
            result = ModelResponse(text=result, usage=Usage(input_tokens=10, output_tokens=5))
        result.model = result.model or self.name
        return result.parse_output(request)


def example_for_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A small value that validates against a JSON schema."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return example_for_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return example_for_schema(schema[key][0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_for_schema(v, defs) for k, v in props.items()}
    if kind == "array":
        return [example_for_schema(schema["items"], defs)] if schema.get("minItems") else []
    return {"string": "x", "integer": 0, "number": 0.0, "boolean": False, "null": None}.get(kind, "x")
