"""Wire tests for the OpenAI Responses API model: what goes out, what comes back."""

import json

import pytest

from cadre_core.errors import BadResponseError
from cadre_core.models.base import Message, ModelRequest, ToolCall, ToolDefinition, Usage
from cadre_core.models.openai import OpenAIModel, is_strict_schema
from cadre_core.testing import RecordingHandler, mock_http_client
from tests.core.wire import (
    WEATHER_SCHEMA,
    WEATHER_TOOL,
    ask,
    build_recorded,
    fixture,
    missing_key_error,
    tool_loop,
)

pytestmark = pytest.mark.anyio


def message_response(*content: dict, **fields) -> dict:
    """The text fixture with its message content (and any top-level fields) replaced."""
    body = fixture("openai_message")
    body["output"][1]["content"] = list(content)
    body.update(fields)
    return body


def output_text(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": []}


def make_model(handler: RecordingHandler, name: str = "gpt-6.1-sol") -> OpenAIModel:
    return OpenAIModel(name, api_key="sk-test", http_client=mock_http_client(handler))


# --- the request on the wire -------------------------------------------------------------


async def test_request_goes_to_responses_endpoint_with_every_setting():
    handler = RecordingHandler((200, fixture("openai_function_call")))

    await make_model(handler).request(
        ask(system="You are terse.", tools=[WEATHER_TOOL], effort="medium", max_output_tokens=2048)
    )

    [req] = handler.requests
    assert req.method == "POST"
    assert str(req.url) == "https://api.openai.com/v1/responses"
    assert req.headers["authorization"] == "Bearer sk-test"
    assert handler.bodies[0] == {
        "model": "gpt-6.1-sol",
        "instructions": "You are terse.",
        "input": [{"role": "user", "content": "Weather in Paris?"}],
        "max_output_tokens": 2048,
        "reasoning": {"effort": "medium"},
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER_TOOL.parameters,
                "strict": True,
            }
        ],
    }


async def test_minimal_request_has_no_reasoning_instructions_or_tools_and_default_limit():
    handler = RecordingHandler((200, fixture("openai_message")))

    await make_model(handler).request(ask("Hi"))

    assert handler.bodies[0] == {
        "model": "gpt-6.1-sol",
        "input": [{"role": "user", "content": "Hi"}],
        "max_output_tokens": 8192,
    }


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
async def test_effort_maps_to_reasoning_effort(effort):
    handler = RecordingHandler((200, fixture("openai_message")))

    await make_model(handler).request(ask(effort=effort))

    assert handler.bodies[0]["reasoning"] == {"effort": effort}


async def test_structured_output_sends_strict_json_schema_and_parses_the_answer():
    answer = {"temp_c": 18, "summary": "Cloudy"}
    handler = RecordingHandler((200, message_response(output_text(json.dumps(answer)))))

    response = await make_model(handler).request(ask(output_schema=WEATHER_SCHEMA, schema_name="weather"))

    assert handler.bodies[0]["text"] == {
        "format": {"type": "json_schema", "name": "weather", "schema": WEATHER_SCHEMA, "strict": True}
    }
    assert response.output == answer


async def test_open_schemas_are_sent_non_strict():
    # Strict mode rejects optional properties and open objects, so they must go out strict=False.
    loose_schema = {"type": "object", "properties": {"summary": {"type": "string"}, "note": {"type": "string"}}}
    loose_tool = ToolDefinition(
        "lookup", "Look something up.", {"type": "object", "properties": {"q": {"type": "string"}}}
    )
    handler = RecordingHandler((200, message_response(output_text('{"summary": "ok"}'))))

    await make_model(handler).request(ask(output_schema=loose_schema, tools=[loose_tool]))

    body = handler.bodies[0]
    assert body["text"]["format"]["strict"] is False
    assert body["tools"][0]["strict"] is False


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        (WEATHER_SCHEMA, True),
        ({**WEATHER_SCHEMA, "required": ["temp_c"]}, False),
        ({k: v for k, v in WEATHER_SCHEMA.items() if k != "additionalProperties"}, False),
        (
            {
                "type": "object",
                "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {}}}},
                "required": ["items"],
                "additionalProperties": False,
            },
            False,
        ),
        (
            {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
                "required": ["tags"],
                "additionalProperties": False,
            },
            True,
        ),
    ],
)
def test_is_strict_schema(schema, strict):
    assert is_strict_schema(schema) is strict


# --- parsing the answer -----------------------------------------------------------------


async def test_parses_function_call_and_usage():
    handler = RecordingHandler((200, fixture("openai_function_call")))

    response = await make_model(handler).request(ask(tools=[WEATHER_TOOL]))

    assert response.tool_calls == [ToolCall("call_Zx9kLq2w", "get_weather", {"city": "Paris"})]
    assert response.text == ""
    assert response.finish_reason == "tool_use"
    assert response.model == "openai:gpt-6.1-sol"
    assert response.response_id == "resp_68af0c1e5b8c8190a1b2c3d4"
    # OpenAI's input_tokens already includes cached tokens; output_tokens includes reasoning.
    assert response.usage == Usage(
        input_tokens=1320, cache_read_tokens=1024, cache_write_tokens=0, output_tokens=156, reasoning_tokens=128
    )


async def test_parses_message_text_and_cache_write_usage():
    handler = RecordingHandler((200, fixture("openai_message")))

    response = await make_model(handler).request(ask())

    assert response.text == "It is 18°C and cloudy in Paris."
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.usage == Usage(
        input_tokens=1402, cache_read_tokens=1280, cache_write_tokens=64, output_tokens=40, reasoning_tokens=24
    )


async def test_multiple_text_parts_are_joined():
    handler = RecordingHandler((200, message_response(output_text("It is 18°C"), output_text(" in Paris."))))

    response = await make_model(handler).request(ask())

    assert response.text == "It is 18°C in Paris."


async def test_usage_without_details_counts_zero():
    body = fixture("openai_message")
    body["usage"] = {"input_tokens": 30, "output_tokens": 9, "total_tokens": 39}
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask())

    assert response.usage == Usage(input_tokens=30, output_tokens=9)


async def test_function_call_with_unparseable_arguments_keeps_the_raw_string():
    body = fixture("openai_function_call")
    body["output"][1]["arguments"] = '{"city": "Par'
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask(tools=[WEATHER_TOOL]))

    assert response.tool_calls == [ToolCall("call_Zx9kLq2w", "get_weather", {"_raw": '{"city": "Par'})]


@pytest.mark.parametrize(
    ("fields", "content", "finish", "text"),
    [
        ({}, [output_text("Done.")], "stop", "Done."),
        (
            {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
            [output_text("It is 18")],
            "length",
            "It is 18",
        ),
        (
            {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
            [],
            "length",
            "",
        ),
        (
            {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}},
            [],
            "content_filter",
            "",
        ),
        ({}, [{"type": "refusal", "refusal": "I can't help with that."}], "refusal", "I can't help with that."),
    ],
    ids=["completed", "truncated", "truncated-empty", "content-filter", "refusal"],
)
async def test_finish_reasons_are_normalised(fields, content, finish, text):
    handler = RecordingHandler((200, message_response(*content, **fields)))

    response = await make_model(handler).request(ask())

    assert response.finish_reason == finish
    assert response.text == text


async def test_failed_status_is_a_bad_response_with_the_vendor_message():
    body = message_response(
        status="failed", error={"code": "server_error", "message": "The model failed to generate a response."}
    )
    handler = RecordingHandler((200, body))

    with pytest.raises(BadResponseError, match="failed to generate"):
        await make_model(handler).request(ask())


# --- multi-turn tool loop ---------------------------------------------------------------


async def test_tool_loop_replays_reasoning_and_call_items_after_a_thread_store_round_trip(tmp_path):
    first_body = fixture("openai_function_call")
    handler = RecordingHandler((200, first_body), (200, fixture("openai_message")))
    model = make_model(handler)
    request = ask(system="You are terse.", tools=[WEATHER_TOOL], effort="medium")

    second = await tool_loop(model, request, tmp_path, role="oracle")

    assert second.text == "It is 18°C and cloudy in Paris."
    assert handler.bodies[1]["input"] == [
        {"role": "user", "content": "Weather in Paris?"},
        # The reasoning item (with its encrypted content) and the call, verbatim.
        *first_body["output"],
        {"type": "function_call_output", "call_id": "call_Zx9kLq2w", "output": "18°C, cloudy"},
    ]


async def test_history_from_another_provider_is_converted_to_input_items():
    call = ToolCall("toolu_01A09q90", "get_weather", {"city": "Paris"})
    assistant = Message.assistant("Let me check.", [call])
    assistant.replay = {"provider": "anthropic", "content": [{"type": "thinking", "thinking": "..."}]}
    history = [
        Message.user("Weather in Paris?"),
        assistant,
        Message.tool_result(call, "no such city", is_error=True),
        Message.user("Try again."),
    ]
    handler = RecordingHandler((200, fixture("openai_message")))

    await make_model(handler).request(ModelRequest(history, tools=[WEATHER_TOOL]))

    items = handler.bodies[0]["input"]
    assert items[:2] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Let me check."},
    ]
    assert items[2]["type"] == "function_call"
    assert items[2]["call_id"] == "toolu_01A09q90"
    assert items[2]["name"] == "get_weather"
    assert json.loads(items[2]["arguments"]) == {"city": "Paris"}
    assert items[3:] == [
        {"type": "function_call_output", "call_id": "toolu_01A09q90", "output": "no such city"},
        {"role": "user", "content": "Try again."},
    ]


async def test_replay_holds_the_native_items_and_is_json_safe():
    body = fixture("openai_function_call")
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask())

    assert response.replay == {"provider": "openai", "items": body["output"]}
    assert json.loads(json.dumps(response.replay)) == response.replay


# --- building from config ---------------------------------------------------------------


def test_build_model_without_a_key_names_the_env_var(tmp_path):
    err = missing_key_error(tmp_path, "openai", "openai:gpt-6.1-sol")

    assert err.env_var == "OPENAI_API_KEY"
    assert "OPENAI_API_KEY" in str(err)
    assert err.provider == "openai"
    assert err.model == "gpt-6.1-sol"


async def test_build_model_uses_the_key_and_base_url_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gateway.example/openai/v1")
    handler = RecordingHandler((200, fixture("openai_message")))

    model = build_recorded(tmp_path, "openai", "openai:gpt-6.1-sol", handler)
    await model.request(ask())

    assert isinstance(model, OpenAIModel)
    [req] = handler.requests
    assert str(req.url) == "https://gateway.example/openai/v1/responses"
    assert req.headers["authorization"] == "Bearer sk-from-env"


def test_strict_mode_only_for_closed_schemas_including_defs():
    from cadre_core.models.openai import is_strict_schema

    closed = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert is_strict_schema(closed)
    assert not is_strict_schema({**closed, "additionalProperties": True})
    assert not is_strict_schema({**closed, "$defs": {"Open": {"type": "object", "properties": {"b": {}}}}})
    assert is_strict_schema({**closed, "$defs": {"Closed": closed}})
