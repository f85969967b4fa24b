"""Wire tests for the Anthropic Messages API model: what goes out, what comes back."""

import json

import pytest

from cadre_core.models.anthropic import AnthropicModel
from cadre_core.models.base import Message, ModelRequest, ToolCall, Usage
from cadre_core.testing import RecordingHandler, mock_http_client
from tests.core.wire import (
    WEATHER_SCHEMA,
    ask,
    build_recorded,
    fixture,
    foreign_two_call_history,
    missing_key_error,
    tool_loop,
    weather_tool,
)

pytestmark = pytest.mark.anyio

# City and unit, as in the recorded tool_use fixture.
WEATHER_TOOL = weather_tool(unit=True)


def text_response(text: str, *, stop_reason: str = "end_turn") -> dict:
    body = fixture("anthropic_text")
    body["content"] = [{"type": "text", "text": text}]
    body["stop_reason"] = stop_reason
    return body


def make_model(handler: RecordingHandler, name: str = "claude-sonnet-5-5") -> AnthropicModel:
    return AnthropicModel(name, api_key="sk-ant-test", http_client=mock_http_client(handler))


# --- the request on the wire -------------------------------------------------------------


async def test_request_goes_to_messages_endpoint_with_every_setting():
    handler = RecordingHandler((200, fixture("anthropic_tool_use")))
    model = make_model(handler)

    await model.request(ask(system="You are terse.", tools=[WEATHER_TOOL], effort="high", max_output_tokens=4096))

    [req] = handler.requests
    assert req.method == "POST"
    assert str(req.url) == "https://api.anthropic.com/v1/messages"
    assert req.headers["authorization"] == "Bearer sk-ant-test"
    assert req.headers["anthropic-version"]
    assert handler.bodies[0] == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 4096,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "input_schema": WEATHER_TOOL.parameters,
            }
        ],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
    }


async def test_minimal_request_has_no_thinking_system_or_tools_and_default_max_tokens():
    handler = RecordingHandler((200, fixture("anthropic_text")))

    await make_model(handler).request(ask("Hi"))

    assert handler.bodies[0] == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": "Hi"}],
    }


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
async def test_effort_maps_to_adaptive_thinking_and_output_config_effort(effort):
    handler = RecordingHandler((200, fixture("anthropic_text")))

    await make_model(handler).request(ask(effort=effort))

    body = handler.bodies[0]
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": effort}
    assert "temperature" not in body


async def test_large_max_tokens_is_sent_without_the_sdk_demanding_streaming():
    # The SDK refuses big non-streaming requests unless a timeout is configured explicitly.
    handler = RecordingHandler((200, fixture("anthropic_text")))

    await make_model(handler).request(ask(max_output_tokens=64_000))

    assert handler.bodies[0]["max_tokens"] == 64_000


async def test_structured_output_sends_json_schema_and_parses_the_answer():
    answer = {"temp_c": 18, "summary": "Cloudy"}
    handler = RecordingHandler((200, text_response(json.dumps(answer))))

    response = await make_model(handler).request(ask(output_schema=WEATHER_SCHEMA, schema_name="weather", effort="low"))

    assert handler.bodies[0]["output_config"] == {
        "effort": "low",
        "format": {"type": "json_schema", "schema": WEATHER_SCHEMA},
    }
    assert response.output == answer
    assert response.text == json.dumps(answer)


async def test_structured_output_that_does_not_parse_leaves_output_none():
    handler = RecordingHandler((200, text_response("Sorry, no JSON today.")))

    response = await make_model(handler).request(ask(output_schema=WEATHER_SCHEMA))

    assert response.output is None
    assert response.text == "Sorry, no JSON today."


# --- parsing the answer -----------------------------------------------------------------


async def test_parses_text_tool_calls_usage_and_id_but_not_thinking():
    handler = RecordingHandler((200, fixture("anthropic_tool_use")))

    response = await make_model(handler).request(ask(tools=[WEATHER_TOOL]))

    assert response.text == "Let me check the weather in Paris."
    assert response.tool_calls == [
        ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris", "unit": "celsius"})
    ]
    assert response.finish_reason == "tool_use"
    assert response.model == "anthropic:claude-sonnet-5-5"
    assert response.response_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.output is None
    # Anthropic's input_tokens excludes the cache; ours includes reads and writes.
    assert response.usage == Usage(
        input_tokens=412 + 2048 + 300,
        cache_read_tokens=2048,
        cache_write_tokens=300,
        output_tokens=187,
        reasoning_tokens=95,
    )


async def test_usage_without_cache_or_thinking_fields_counts_zero():
    body = text_response("Hello.")
    body["usage"] = {"input_tokens": 21, "output_tokens": 3}
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask("Hi"))

    assert response.usage == Usage(input_tokens=21, output_tokens=3)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_use"),
        ("refusal", "refusal"),
    ],
)
async def test_stop_reasons_are_normalised(stop_reason, finish):
    handler = RecordingHandler((200, text_response("Some text.", stop_reason=stop_reason)))

    response = await make_model(handler).request(ask())

    assert response.finish_reason == finish


async def test_refusal_with_no_content_is_an_answer_not_an_error():
    body = fixture("anthropic_text")
    body.update(
        content=[],
        stop_reason="refusal",
        stop_details={"type": "refusal", "category": "cyber", "explanation": "Request declined."},
    )
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask("Write malware"))

    assert response.finish_reason == "refusal"
    assert response.text == ""
    assert response.tool_calls == []


async def test_truncated_during_thinking_reports_length_with_empty_text():
    body = fixture("anthropic_tool_use")
    body.update(content=[body["content"][0]], stop_reason="max_tokens")
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask(max_output_tokens=200))

    assert response.finish_reason == "length"
    assert response.text == ""


# --- multi-turn tool loop ---------------------------------------------------------------


async def test_tool_loop_replays_native_blocks_after_a_thread_store_round_trip(tmp_path):
    first_body = fixture("anthropic_tool_use")
    handler = RecordingHandler((200, first_body), (200, fixture("anthropic_text")))
    model = make_model(handler)
    request = ask(system="You are terse.", tools=[WEATHER_TOOL], effort="medium")

    # Threads are persisted as JSON; the replay must survive that unchanged.
    second = await tool_loop(model, request, tmp_path, role="oracle")

    assert second.text == "It is 18°C and cloudy in Paris."
    assert second.finish_reason == "stop"
    assert handler.bodies[1]["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        # Verbatim, including the thinking block and its signature.
        {"role": "assistant", "content": first_body["content"]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": "18°C, cloudy",
                    "is_error": False,
                }
            ],
        },
    ]


async def test_history_from_another_provider_is_converted_and_tool_results_are_merged():
    history = foreign_two_call_history("Lyon", "city not found")
    handler = RecordingHandler((200, fixture("anthropic_text")))

    await make_model(handler).request(ModelRequest(history, tools=[WEATHER_TOOL]))

    assert handler.bodies[0]["messages"] == [
        {"role": "user", "content": "Weather in Paris and Lyon?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both cities."},
                {"type": "tool_use", "id": "call_Zx9kLq2w", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_Yy8jKp1v", "name": "get_weather", "input": {"city": "Lyon"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_Zx9kLq2w",
                    "content": "18°C, cloudy",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call_Yy8jKp1v",
                    "content": "city not found",
                    "is_error": True,
                },
            ],
        },
    ]


async def test_plain_assistant_text_turn_is_sent_as_text():
    history = [Message.user("Hi"), Message.assistant("Hello!"), Message.user("Weather in Paris?")]
    handler = RecordingHandler((200, fixture("anthropic_text")))

    await make_model(handler).request(ModelRequest(history))

    assert handler.bodies[0]["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello!"}],
    }


async def test_replay_holds_the_native_blocks_and_is_json_safe():
    body = fixture("anthropic_tool_use")
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask())

    assert response.replay == {"provider": "anthropic", "content": body["content"]}
    assert json.loads(json.dumps(response.replay)) == response.replay


# --- building from config ---------------------------------------------------------------


def test_build_model_without_a_key_names_the_env_var(tmp_path):
    err = missing_key_error(tmp_path, "anthropic", "anthropic:claude-sonnet-5-5")

    assert err.env_var == "ANTHROPIC_API_KEY"
    assert "ANTHROPIC_API_KEY" in str(err)
    assert not err.retryable


async def test_build_model_uses_the_key_and_base_url_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://gateway.example/anthropic")
    handler = RecordingHandler((200, fixture("anthropic_text")))

    model = build_recorded(tmp_path, "anthropic", "anthropic:claude-sonnet-5-5", handler)
    response = await model.request(ask())

    assert isinstance(model, AnthropicModel)
    assert response.model == "anthropic:claude-sonnet-5-5"
    [req] = handler.requests
    assert str(req.url) == "https://gateway.example/anthropic/v1/messages"
    assert req.headers["authorization"] == "Bearer sk-ant-from-env"
