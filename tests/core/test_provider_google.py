"""Wire tests for the Gemini model (google-genai): what goes out, what comes back."""

import base64
import json

import pytest

from cadre_core.errors import BadResponseError, ContentFilterError
from cadre_core.models.base import Message, ModelRequest, ToolCall, Usage
from cadre_core.models.google import GoogleModel
from cadre_core.testing import RecordingHandler, mock_http_client
from tests.core.wire import (
    WEATHER_SCHEMA,
    WEATHER_TOOL,
    ask,
    build_recorded,
    fixture,
    foreign_two_call_history,
    missing_key_error,
    tool_loop,
)

pytestmark = pytest.mark.anyio

ENDPOINT = "https://generativelanguage.googleapis.com/v1/models/gemini-3-flash-preview:generateContent"


def candidate_response(parts: list[dict] | None, finish_reason: str = "STOP") -> dict:
    """The text fixture with its first candidate's parts and finish reason replaced."""
    body = fixture("google_text")
    content = {"role": "model"} if parts is None else {"role": "model", "parts": parts}
    body["candidates"][0].update(content=content, finishReason=finish_reason)
    return body


def make_model(handler: RecordingHandler, name: str = "gemini-3-flash-preview") -> GoogleModel:
    return GoogleModel(name, api_key="test-gemini-key", http_client=mock_http_client(handler))


# --- the request on the wire -------------------------------------------------------------


async def test_request_goes_to_generate_content_with_every_setting():
    handler = RecordingHandler((200, fixture("google_function_call")))

    await make_model(handler).request(
        ask(system="You are terse.", tools=[WEATHER_TOOL], effort="high", max_output_tokens=4096)
    )

    [req] = handler.requests
    assert req.method == "POST"
    assert str(req.url) == ENDPOINT
    assert req.headers["x-goog-api-key"] == "test-gemini-key"
    # Some nested keys go out in snake_case; the API's proto-JSON parser accepts both cases.
    assert handler.bodies[0] == {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "systemInstruction": {"role": "user", "parts": [{"text": "You are terse."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Current weather for a city.",
                        "parameters_json_schema": WEATHER_TOOL.parameters,
                    }
                ]
            }
        ],
        "generationConfig": {"maxOutputTokens": 4096, "thinkingConfig": {"thinking_level": "HIGH"}},
    }


async def test_minimal_request_has_no_thinking_config_and_default_limit():
    handler = RecordingHandler((200, fixture("google_text")))

    await make_model(handler).request(ask("Hi"))

    assert handler.bodies[0] == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"maxOutputTokens": 8192},
    }


@pytest.mark.parametrize(("effort", "level"), [("low", "LOW"), ("medium", "MEDIUM"), ("high", "HIGH")])
async def test_effort_maps_to_thinking_level(effort, level):
    handler = RecordingHandler((200, fixture("google_text")))

    await make_model(handler).request(ask(effort=effort))

    assert handler.bodies[0]["generationConfig"]["thinkingConfig"] == {"thinking_level": level}


async def test_models_prefix_is_stripped_from_the_name():
    handler = RecordingHandler((200, fixture("google_text")))
    model = make_model(handler, "models/gemini-3-flash-preview")

    response = await model.request(ask())

    assert model.name == "google:gemini-3-flash-preview"
    assert response.model == "google:gemini-3-flash-preview"
    assert str(handler.requests[0].url) == ENDPOINT


async def test_structured_output_sends_json_schema_and_parses_the_answer():
    answer = {"temp_c": 18, "summary": "Cloudy"}
    handler = RecordingHandler((200, candidate_response([{"text": json.dumps(answer)}])))

    response = await make_model(handler).request(ask(output_schema=WEATHER_SCHEMA))

    config = handler.bodies[0]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == WEATHER_SCHEMA
    assert response.output == answer


# --- parsing the answer -----------------------------------------------------------------


async def test_parses_text_without_thought_parts_and_usage():
    handler = RecordingHandler((200, fixture("google_text")))

    response = await make_model(handler).request(ask())

    assert response.text == "It is 18°C and cloudy in Paris."
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.response_id == "nK4QaLmEOdXy2f9Qr7HE5Bh"
    assert response.output is None
    # candidatesTokenCount excludes thoughts; our output_tokens includes them.
    assert response.usage == Usage(input_tokens=160, output_tokens=12 + 30, reasoning_tokens=30)


async def test_parses_function_call_and_cached_usage():
    handler = RecordingHandler((200, fixture("google_function_call")))

    response = await make_model(handler).request(ask(tools=[WEATHER_TOOL]))

    assert response.tool_calls == [ToolCall("fc_7b1c2d", "get_weather", {"city": "Paris"})]
    assert response.text == ""
    assert response.finish_reason == "tool_use"
    # promptTokenCount already includes the cached tokens.
    assert response.usage == Usage(input_tokens=120, cache_read_tokens=40, output_tokens=18 + 64, reasoning_tokens=64)


async def test_function_calls_without_ids_get_distinct_generated_ids():
    parts = [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}},
    ]
    handler = RecordingHandler((200, candidate_response(parts)))

    response = await make_model(handler).request(ask(tools=[WEATHER_TOOL]))

    first, second = response.tool_calls
    assert first.id.startswith("cadre_call_")
    assert second.id.startswith("cadre_call_")
    assert first.id != second.id
    assert [c.arguments for c in response.tool_calls] == [{"city": "Paris"}, {"city": "Lyon"}]


async def test_missing_usage_metadata_counts_zero():
    body = fixture("google_text")
    del body["usageMetadata"]
    handler = RecordingHandler((200, body))

    response = await make_model(handler).request(ask())

    assert response.usage == Usage()


@pytest.mark.parametrize(
    ("finish_reason", "parts", "finish"),
    [
        ("STOP", [{"text": "Done."}], "stop"),
        ("MAX_TOKENS", [{"text": "It is 18"}], "length"),
        ("MAX_TOKENS", None, "length"),
        ("SAFETY", None, "content_filter"),
        ("RECITATION", [{"text": "Partial"}], "content_filter"),
        ("PROHIBITED_CONTENT", None, "content_filter"),
        ("STOP", [{"functionCall": {"id": "fc_1", "name": "get_weather", "args": {"city": "Paris"}}}], "tool_use"),
    ],
)
async def test_finish_reasons_are_normalised(finish_reason, parts, finish):
    handler = RecordingHandler((200, candidate_response(parts, finish_reason)))

    response = await make_model(handler).request(ask())

    assert response.finish_reason == finish


async def test_blocked_prompt_is_a_content_filter_error():
    body = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": "gemini-3-flash-preview",
    }
    handler = RecordingHandler((200, body))

    with pytest.raises(ContentFilterError, match="PROHIBITED_CONTENT"):
        await make_model(handler).request(ask())


async def test_malformed_function_call_with_no_text_is_a_bad_response():
    handler = RecordingHandler((200, candidate_response(None, "MALFORMED_FUNCTION_CALL")))

    with pytest.raises(BadResponseError, match="MALFORMED_FUNCTION_CALL") as info:
        await make_model(handler).request(ask(tools=[WEATHER_TOOL]))

    assert info.value.retryable


# --- multi-turn tool loop ---------------------------------------------------------------


async def test_tool_loop_replays_content_with_thought_signature_after_a_thread_store_round_trip(tmp_path):
    first_body = fixture("google_function_call")
    handler = RecordingHandler((200, first_body), (200, fixture("google_text")))
    model = make_model(handler)
    request = ask(system="You are terse.", tools=[WEATHER_TOOL], effort="low")

    # Threads are persisted with json.dumps; thought signatures are bytes in the SDK.
    # The second request goes without the effort setting.
    second = await tool_loop(model, request, tmp_path, role="review", effort=None)

    assert second.text == "It is 18°C and cloudy in Paris."
    contents = handler.bodies[1]["contents"]
    assert contents[0] == {"role": "user", "parts": [{"text": "Weather in Paris?"}]}
    # The model turn goes back as returned, with the signature's bytes unchanged.
    assert contents[1] == first_body["candidates"][0]["content"]
    assert base64.b64decode(contents[1]["parts"][1]["thoughtSignature"]) == b"signature-of-the-thought"
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"id": "fc_7b1c2d", "name": "get_weather", "response": {"output": "18°C, cloudy"}}}
        ],
    }


async def test_replay_is_json_safe():
    handler = RecordingHandler((200, fixture("google_function_call")))

    response = await make_model(handler).request(ask())

    assert response.replay is not None
    assert response.replay["provider"] == "google"
    assert json.loads(json.dumps(response.replay)) == response.replay


async def test_history_from_another_provider_is_converted_to_parts_and_results_are_merged():
    history = foreign_two_call_history("Atlantis", "no such city")
    handler = RecordingHandler((200, fixture("google_text")))

    await make_model(handler).request(ModelRequest(history, tools=[WEATHER_TOOL]))

    assert handler.bodies[0]["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Atlantis?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking both cities."},
                {"functionCall": {"id": "call_Zx9kLq2w", "name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"id": "call_Yy8jKp1v", "name": "get_weather", "args": {"city": "Atlantis"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "call_Zx9kLq2w",
                        "name": "get_weather",
                        "response": {"output": "18°C, cloudy"},
                    }
                },
                {
                    "functionResponse": {
                        "id": "call_Yy8jKp1v",
                        "name": "get_weather",
                        "response": {"error": "no such city"},
                    }
                },
            ],
        },
    ]


# --- building from config ---------------------------------------------------------------


def test_build_model_without_a_key_names_the_env_var(tmp_path):
    err = missing_key_error(tmp_path, "google", "google:gemini-3-flash-preview")

    assert err.env_var == "GEMINI_API_KEY"
    assert "GEMINI_API_KEY" in str(err)


@pytest.mark.parametrize("env_var", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
async def test_build_model_takes_the_key_from_either_env_var(tmp_path, monkeypatch, env_var):
    monkeypatch.setenv(env_var, "key-from-env")
    handler = RecordingHandler((200, fixture("google_text")))

    model = build_recorded(tmp_path, "google", "gemini:gemini-3-flash-preview", handler)
    await model.request(ask())

    assert isinstance(model, GoogleModel)
    [req] = handler.requests
    assert str(req.url) == ENDPOINT
    assert req.headers["x-goog-api-key"] == "key-from-env"


async def test_generated_call_ids_are_not_sent_back():
    from cadre_core.models.google import _contents

    call = ToolCall("cadre_call_abc", "get_weather", {"city": "Paris"})
    contents = _contents([Message.assistant("", [call]), Message.tool_result(call, "18C")])
    assert contents[0].parts[0].function_call.id is None
    assert contents[1].parts[0].function_response.id is None
    assert contents[1].parts[0].function_response.name == "get_weather"
