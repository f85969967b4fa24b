"""Wire tests for the Chat Completions model used for Ollama, vLLM, LM Studio and OpenRouter."""

import json

import pytest

from cadre_core.models.base import Message, ModelRequest, ToolCall, Usage
from cadre_core.models.openai_compatible import OpenAICompatibleModel
from cadre_core.testing import RecordingHandler, mock_http_client
from tests.core.wire import WEATHER_SCHEMA, WEATHER_TOOL, ask, build_recorded, fixture, tool_loop

pytestmark = pytest.mark.anyio

BASE_URL = "http://localhost:11434/v1"


def chat_response(finish_reason: str = "stop", **message) -> dict:
    """The text fixture with its finish reason and message fields replaced."""
    body = fixture("chat_text")
    body["choices"][0]["finish_reason"] = finish_reason
    body["choices"][0]["message"].update(message)
    return body


def make_model(handler: RecordingHandler, name: str = "qwen3:8b", **kw) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(
        name, api_key=kw.pop("api_key", None), base_url=BASE_URL, http_client=mock_http_client(handler), **kw
    )


# --- the request on the wire -------------------------------------------------------------


async def test_request_goes_to_chat_completions_with_every_setting():
    handler = RecordingHandler((200, fixture("chat_tool_calls")))

    await make_model(handler).request(
        ask(system="You are terse.", tools=[WEATHER_TOOL], effort="low", max_output_tokens=512)
    )

    [req] = handler.requests
    assert req.method == "POST"
    assert str(req.url) == f"{BASE_URL}/chat/completions"
    # Local servers need no key, but the SDK refuses to run without one.
    assert req.headers["authorization"] == "Bearer not-needed"
    assert handler.bodies[0] == {
        "model": "qwen3:8b",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        "max_tokens": 512,
        "reasoning_effort": "low",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": WEATHER_TOOL.parameters,
                },
            }
        ],
    }


async def test_minimal_request_has_no_system_effort_or_tools_and_default_limit():
    handler = RecordingHandler((200, fixture("chat_text")))

    await make_model(handler, api_key="sk-or-v1-abc").request(ask("Hi"))

    assert handler.requests[0].headers["authorization"] == "Bearer sk-or-v1-abc"
    assert handler.bodies[0] == {
        "model": "qwen3:8b",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 8192,
    }


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
async def test_effort_maps_to_reasoning_effort(effort):
    handler = RecordingHandler((200, fixture("chat_text")))

    await make_model(handler).request(ask(effort=effort))

    assert handler.bodies[0]["reasoning_effort"] == effort


async def test_structured_output_sends_response_format_and_parses_the_answer():
    answer = {"temp_c": 18, "summary": "Cloudy"}
    handler = RecordingHandler((200, chat_response(content=json.dumps(answer))))

    response = await make_model(handler).request(ask(output_schema=WEATHER_SCHEMA, schema_name="weather"))

    assert handler.bodies[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True},
    }
    assert response.output == answer


async def test_structured_output_in_a_json_fence_is_still_parsed():
    # Small local models often wrap JSON in a Markdown fence.
    handler = RecordingHandler((200, chat_response(content='```json\n{"temp_c": 18, "summary": "Cloudy"}\n```')))

    response = await make_model(handler).request(ask(output_schema=WEATHER_SCHEMA))

    assert response.output == {"temp_c": 18, "summary": "Cloudy"}


# --- parsing the answer -----------------------------------------------------------------


async def test_parses_tool_calls_and_usage():
    handler = RecordingHandler((200, fixture("chat_tool_calls")))

    response = await make_model(handler).request(ask(tools=[WEATHER_TOOL]))

    assert response.tool_calls == [ToolCall("call_k3n2x9", "get_weather", {"city": "Paris"})]
    assert response.text == ""
    assert response.finish_reason == "tool_use"
    assert response.model == "openai_compatible:qwen3:8b"
    assert response.response_id == "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    assert response.replay is None
    # prompt_tokens includes cached tokens; completion_tokens includes reasoning.
    assert response.usage == Usage(input_tokens=245, cache_read_tokens=128, output_tokens=31, reasoning_tokens=12)


async def test_parses_text_with_usage_lacking_details():
    handler = RecordingHandler((200, fixture("chat_text")))

    response = await make_model(handler).request(ask())

    assert response.text == "It is 18°C and cloudy in Paris."
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=290, output_tokens=11)


async def test_missing_usage_counts_zero():
    body = fixture("chat_text")
    del body["usage"]
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask())

    assert response.usage == Usage()


@pytest.mark.parametrize(
    ("finish_reason", "message", "finish", "text"),
    [
        ("stop", {"content": "Done."}, "stop", "Done."),
        ("length", {"content": "It is 18"}, "length", "It is 18"),
        ("length", {"content": ""}, "length", ""),
        ("content_filter", {"content": None}, "content_filter", ""),
        (
            "stop",
            {"content": None, "refusal": "I'm sorry, I can't help with that."},
            "refusal",
            "I'm sorry, I can't help with that.",
        ),
    ],
    ids=["stop", "length", "length-empty", "content-filter", "refusal"],
)
async def test_finish_reasons_are_normalised(finish_reason, message, finish, text):
    handler = RecordingHandler((200, chat_response(finish_reason, **message)))

    response = await make_model(handler).request(ask())

    assert response.finish_reason == finish
    assert response.text == text


# --- multi-turn tool loop ---------------------------------------------------------------


async def test_tool_loop_sends_assistant_tool_calls_and_tool_messages_after_a_round_trip(tmp_path):
    handler = RecordingHandler((200, fixture("chat_tool_calls")), (200, fixture("chat_text")))
    model = make_model(handler)
    request = ask(system="You are terse.", tools=[WEATHER_TOOL])

    second = await tool_loop(model, request, tmp_path, role="search")

    assert second.text == "It is 18°C and cloudy in Paris."
    messages = handler.bodies[1]["messages"]
    assert messages[:2] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assistant = messages[2]
    assert assistant["role"] == "assistant"
    assert assistant["content"] is None
    [tool_call] = assistant["tool_calls"]
    assert tool_call["id"] == "call_k3n2x9"
    assert tool_call["type"] == "function"
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == {"city": "Paris"}
    assert messages[3:] == [{"role": "tool", "tool_call_id": "call_k3n2x9", "content": "18°C, cloudy"}]


async def test_openai_replay_items_are_not_sent_to_chat_completions():
    # The Responses-API replay belongs to the `openai` provider, not this one.
    call = ToolCall("call_Zx9kLq2w", "get_weather", {"city": "Paris"})
    assistant = Message.assistant("Let me check.", [call])
    assistant.replay = {"provider": "openai", "items": [{"type": "reasoning", "id": "rs_1", "summary": []}]}
    history = [Message.user("Weather in Paris?"), assistant, Message.tool_result(call, "18°C, cloudy")]
    handler = RecordingHandler((200, fixture("chat_text")))

    await make_model(handler).request(ModelRequest(history))

    messages = handler.bodies[0]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["content"] == "Let me check."
    assert messages[1]["tool_calls"][0]["id"] == "call_Zx9kLq2w"
    assert "rs_1" not in json.dumps(handler.bodies[0])


# --- building from config ---------------------------------------------------------------


async def test_build_model_needs_no_key_and_defaults_to_local_ollama(tmp_path):
    handler = RecordingHandler((200, fixture("chat_text")))

    model = build_recorded(tmp_path, "openai_compatible", "openai_compatible:qwen3:8b", handler)
    response = await model.request(ask())

    assert isinstance(model, OpenAICompatibleModel)
    assert model.model_name == "qwen3:8b"
    assert response.model == "openai_compatible:qwen3:8b"
    assert str(handler.requests[0].url) == "http://localhost:11434/v1/chat/completions"


async def test_build_model_uses_the_key_and_base_url_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-or-v1-env")
    monkeypatch.setenv("OPENAI_COMPATIBLE_BASE_URL", "https://openrouter.ai/api/v1")
    handler = RecordingHandler((200, fixture("chat_text")))

    model = build_recorded(tmp_path, "openai_compatible", "openai-compatible:qwen/qwen3-235b", handler)
    await model.request(ask())

    [req] = handler.requests
    assert str(req.url) == "https://openrouter.ai/api/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-or-v1-env"
    assert handler.bodies[0]["model"] == "qwen/qwen3-235b"
