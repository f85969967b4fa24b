"""Shared scaffolding for the provider wire tests (`test_provider_*.py`): recorded vendor bodies,
the weather tool and schema, one-message requests, the tool loop through a `ThreadStore`, and
building a model from config."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from cadre_core.config import ProviderConfig, load_config
from cadre_core.errors import MissingKeyError
from cadre_core.models import build_model
from cadre_core.models.base import Message, Model, ModelRequest, ModelResponse, ToolCall, ToolDefinition
from cadre_core.testing import RecordingHandler, mock_http_client
from cadre_core.threads import ThreadStore

FIXTURES = Path(__file__).parent / "fixtures"

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"temp_c": {"type": "number"}, "summary": {"type": "string"}},
    "required": ["temp_c", "summary"],
    "additionalProperties": False,
}


def weather_tool(*, unit: bool = False) -> ToolDefinition:
    """A strict `get_weather(city)` tool; with `unit`, a required celsius/fahrenheit enum too."""
    properties: dict[str, Any] = {"city": {"type": "string"}}
    if unit:
        properties["unit"] = {"type": "string", "enum": ["celsius", "fahrenheit"]}
    return ToolDefinition(
        name="get_weather",
        description="Current weather for a city.",
        parameters={
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    )


WEATHER_TOOL = weather_tool()


def fixture(name: str) -> dict:
    """A fresh copy of the recorded vendor body `fixtures/<name>.json`."""
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))


def ask(text: str = "Weather in Paris?", **kw: Any) -> ModelRequest:
    """A request of one user message."""
    return ModelRequest([Message.user(text)], **kw)


# --- multi-turn tool loop ---------------------------------------------------------------


def thread_round_trip(tmp_path: Path, messages: list[Message], role: str) -> list[Message]:
    """Store `messages` as a thread and read them back, as a server does between turns."""
    store = ThreadStore(tmp_path / "threads.sqlite")
    try:
        thread_id = store.create(role)
        store.append(thread_id, messages)
        return store.messages(thread_id)
    finally:
        store.close()


async def tool_loop(model: Model, request: ModelRequest, tmp_path: Path, *, role: str, **changes: Any) -> ModelResponse:
    """Send `request`, answer the single tool call it gets back with "18°C, cloudy", store and
    reload that history as a thread, and send it with `request`'s settings (`changes` replace
    some of them). Returns the second response."""
    first = await model.request(request)
    [call] = first.tool_calls
    history = [*request.messages, first.to_message(), Message.tool_result(call, "18°C, cloudy")]
    restored = thread_round_trip(tmp_path, history, role)
    return await model.request(dataclasses.replace(request, messages=restored, **changes))


def foreign_two_call_history(second_city: str, error: str) -> list[Message]:
    """A history the OpenAI provider wrote, for another provider to convert: the user asks about
    Paris and `second_city`; the assistant calls get_weather for each (ids `call_Zx9kLq2w` and
    `call_Yy8jKp1v`) with an OpenAI reasoning replay; Paris answers "18°C, cloudy" and
    `second_city` fails with `error`."""
    calls = [
        ToolCall("call_Zx9kLq2w", "get_weather", {"city": "Paris"}),
        ToolCall("call_Yy8jKp1v", "get_weather", {"city": second_city}),
    ]
    assistant = Message.assistant("Checking both cities.", calls)
    assistant.replay = {"provider": "openai", "items": [{"type": "reasoning", "id": "rs_1"}]}
    return [
        Message.user(f"Weather in Paris and {second_city}?"),
        assistant,
        Message.tool_result(calls[0], "18°C, cloudy"),
        Message.tool_result(calls[1], error, is_error=True),
    ]


# --- building from config ---------------------------------------------------------------


def provider_settings(tmp_path: Path, provider: str) -> ProviderConfig:
    """The default settings of `provider`, from a config loaded in an empty folder."""
    return load_config(tmp_path).config.providers[provider]


def missing_key_error(tmp_path: Path, provider: str, spec: str) -> MissingKeyError:
    """Build `spec` with no key in the environment and return the error it must raise."""
    with pytest.raises(MissingKeyError) as info:
        build_model(spec, provider_settings(tmp_path, provider))
    return info.value


def build_recorded(tmp_path: Path, provider: str, spec: str, handler: RecordingHandler) -> Model:
    """Build `spec` from `provider`'s default settings, its HTTP going to `handler`."""
    return build_model(spec, provider_settings(tmp_path, provider), http_client=mock_http_client(handler))
