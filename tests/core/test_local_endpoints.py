"""Local OpenAI-compatible servers degrade instead of failing: loopback fakes (httpx2.MockTransport) that
reproduce each server's documented request validation and error bodies, cited where each is written down."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from cadre_core.config import load_config
from cadre_core.errors import BadRequestError, ServerError
from cadre_core.models import build_model, endpoints
from cadre_core.models.base import Message, ModelRequest, ToolCall, ToolDefinition, parse_json_text
from cadre_core.models.openai_compatible import OpenAICompatibleModel
from cadre_core.structured import strict_schema
from cadre_core.testing import mock_http_client
from cadre_oracle.answers import Review, validator
from tests.core.wire import fixture

pytestmark = pytest.mark.anyio

REVIEW = strict_schema(Review)
# A small model's answer as seen with llama-cpp-python: schema-shaped, with a raw newline inside a string.
RAW_ANSWER = '{"summary": "One issue.\nSee below.", "findings": [{"severity": "minor", "path": "a.py", "line": 3,\n'
RAW_ANSWER += '"title": "Typo", "explanation": "A typo.", "suggestion": "Fix it."}]}'
READ = ToolDefinition(
    "read_file",
    "Read a file.",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


@pytest.fixture(autouse=True)
def _fresh_memory():
    endpoints.forget()
    yield
    endpoints.forget()


def reply(content: str) -> dict[str, Any]:
    body = fixture("chat_text")
    body["choices"][0]["message"]["content"] = content
    return body


def error(status: int, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.Response(status, json=body)


class FakeServer:
    """Records every request body; `check` returns an error response for a request the server refuses,
    `answer` the reply content for one it takes."""

    def __init__(self, check: Callable[[dict], httpx2.Response | None], *answers: str):
        self.check, self.answers, self.bodies = check, list(answers), []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if (refused := self.check(body)) is not None:
            return refused
        return httpx2.Response(200, json=reply(self.answers.pop(0)))


# --- each server's documented validation ----------------------------------------------------


def llama_cpp_python(body: dict) -> httpx2.Response | None:
    """abetlen/llama-cpp-python: `ChatCompletionRequestResponseFormat.type: Literal["text", "json_object"]`
    with an optional `schema` (llama_cpp/llama_types.py); its RouteErrorHandler turns any exception,
    the request's validation error included, into HTTP 500 `{"error": {"message": str(exc), "type":
    "internal_server_error", "param": null, "code": null}}` (llama_cpp/server/errors.py). Tools are
    accepted (CreateChatCompletionRequest.tools), whether or not the chat format can use them."""
    kind = (body.get("response_format") or {}).get("type")
    if kind not in (None, "text", "json_object"):
        message = (
            "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
            f"  Input should be 'text' or 'json_object' [type=literal_error, input_value='{kind}']"
        )
        return error(500, {"error": {"message": message, "type": "internal_server_error", "param": None, "code": None}})
    return None


def llama_cpp_server_without_jinja(body: dict) -> httpx2.Response | None:
    """llama.cpp `llama-server` started without --jinja: `tools` raise "tools param requires --jinja flag",
    answered as `{"error": {"code": 500, "message": ..., "type": "server_error"}}` (tools/server/utils.hpp
    oaicompat_chat_params_parse; the 500 seen by several clients in the code corpus). Its response_format
    takes text, json_object (+ schema) and json_schema."""
    if body.get("tools"):
        return error(
            500, {"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}}
        )
    return None


def ollama(model_has_tools: bool) -> Callable[[dict], httpx2.Response | None]:
    """Ollama's /v1/chat/completions: response_format json_object and json_schema are taken (docs/openai.md);
    a model whose template has no tool support answers HTTP 400 `{"error": {"message": "<model> does not
    support tools", "type": "api_error", "param": null, "code": null}}` (ollama/ollama#6027, #5793)."""

    def check(body: dict) -> httpx2.Response | None:
        if body.get("tools") and not model_has_tools:
            message = f"registry.ollama.ai/library/{body['model']} does not support tools"
            return error(400, {"error": {"message": message, "type": "api_error", "param": None, "code": None}})
        return None

    return check


def vllm_without_auto_tool_choice(body: dict) -> httpx2.Response | None:
    """vLLM: json_schema goes to guided decoding; tools with tool_choice "auto" (the default when tools are
    given) need --enable-auto-tool-choice and --tool-call-parser, else HTTP 400 `{"object": "error",
    "message": "\\"auto\\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
    "type": "BadRequestError", "param": null, "code": 400}` (langchain4j/langchain4j#3475, vllm#9986)."""
    if body.get("tools") and body.get("tool_choice", "auto") == "auto":
        return error(
            400,
            {
                "object": "error",
                "message": '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
        )
    return None


def lm_studio(body: dict) -> httpx2.Response | None:
    """LM Studio: response_format json_schema and text only; json_object is HTTP 400
    `{"error": "'response_format.type' must be 'json_schema' or 'text'"}` (lmstudio-bug-tracker#189,
    ComfyUI-Lora-Manager#1033 verified against LM Studio 0.4.19). Tools are taken."""
    kind = (body.get("response_format") or {}).get("type")
    if kind not in (None, "text", "json_schema"):
        return error(400, {"error": "'response_format.type' must be 'json_schema' or 'text'"})
    return None


def model_for(server: FakeServer, url: str = "http://127.0.0.1:8080/v1", **pins: Any) -> OpenAICompatibleModel:
    return OpenAICompatibleModel("smollm2", api_key=None, base_url=url, http_client=mock_http_client(server), **pins)


def review_request(**kw: Any) -> ModelRequest:
    return ModelRequest([Message.user("Review this diff.")], output_schema=REVIEW, schema_name="review", **kw)


# --- structured answers ---------------------------------------------------------------------


async def test_llama_cpp_python_falls_back_to_json_object_with_the_schema_and_parses_raw_newlines():
    server = FakeServer(llama_cpp_python, RAW_ANSWER)

    response = await model_for(server).request(review_request())

    assert [b["response_format"]["type"] for b in server.bodies] == ["json_schema", "json_object"]
    assert server.bodies[1]["response_format"]["schema"] == REVIEW
    assert json.dumps(REVIEW) in server.bodies[1]["messages"][0]["content"]
    assert response.output["findings"][0]["title"] == "Typo"
    validator(Review)(response)  # the answer passes the review's own validator


async def test_what_was_found_is_remembered_in_memory_and_across_a_restart():
    server = FakeServer(llama_cpp_python, RAW_ANSWER, RAW_ANSWER, RAW_ANSWER)
    await model_for(server).request(review_request())

    await model_for(server).request(review_request())
    endpoints.forget()  # a new process: only the cache file is left
    await model_for(server).request(review_request())

    assert [b["response_format"]["type"] for b in server.bodies] == ["json_schema", *["json_object"] * 3]
    assert endpoints.cache_file().is_file()
    # Another server is asked afresh.
    other = FakeServer(lm_studio, RAW_ANSWER)
    await model_for(other, "http://127.0.0.1:1234/v1").request(review_request())
    assert [b["response_format"]["type"] for b in other.bodies] == ["json_schema"]


async def test_a_server_refusing_every_response_format_gets_the_schema_in_the_prompt_only():
    def text_only(body: dict) -> httpx2.Response | None:
        if "response_format" in body:
            return error(
                400, {"error": {"message": "Unsupported param: response_format", "type": "invalid_request_error"}}
            )
        return None

    server = FakeServer(text_only, "Here is the review:\n```json\n" + RAW_ANSWER + "\n```")

    response = await model_for(server).request(review_request())

    assert len(server.bodies) == 3
    assert "response_format" not in server.bodies[2]
    assert json.dumps(REVIEW) in server.bodies[2]["messages"][0]["content"]
    assert response.output["summary"] == "One issue.\nSee below."


async def test_lm_studio_takes_json_schema_at_once():
    server = FakeServer(lm_studio, RAW_ANSWER)

    await model_for(server, "http://127.0.0.1:1234/v1").request(review_request())

    assert len(server.bodies) == 1
    assert server.bodies[0]["response_format"]["type"] == "json_schema"


async def test_a_pinned_form_the_server_refuses_names_the_setting():
    server = FakeServer(lm_studio)

    with pytest.raises(BadRequestError) as info:
        await model_for(server, structured_output="json_object").request(review_request())

    message = str(info.value)
    assert "'response_format.type' must be 'json_schema' or 'text'" in message
    assert '[providers.openai_compatible] structured_output = "json_schema" or "prompt"' in message
    assert len(server.bodies) == 1


async def test_a_pinned_prompt_form_sends_no_response_format():
    server = FakeServer(lm_studio, RAW_ANSWER)

    await model_for(server, structured_output="prompt").request(review_request())

    assert "response_format" not in server.bodies[0]


async def test_a_server_error_that_names_no_feature_is_not_taken_for_a_refusal():
    def out_of_memory(body: dict) -> httpx2.Response:
        return error(500, {"error": {"message": "CUDA error: out of memory", "type": "server_error"}})

    server = FakeServer(out_of_memory)

    with pytest.raises(ServerError, match="out of memory"):
        await model_for(server).request(review_request(tools=[READ]))

    assert len(server.bodies) == 1
    assert endpoints.accepts("http://127.0.0.1:8080/v1/", "smollm2") == endpoints.Accepts()


# --- tools ----------------------------------------------------------------------------------

TOOL_BLOCK = 'I will read it.\n{"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}]}'


@pytest.mark.parametrize(
    "check",
    [ollama(model_has_tools=False), vllm_without_auto_tool_choice, llama_cpp_server_without_jinja],
    ids=["ollama-model-without-tools", "vllm-without-auto-tool-choice", "llama-cpp-without-jinja"],
)
async def test_a_server_refusing_tools_gets_the_text_protocol_and_the_loop_goes_on(check):
    server = FakeServer(check, TOOL_BLOCK, "It defines `main`.")
    model = model_for(server)
    request = ModelRequest([Message.user("What is in a.py?")], system="Be brief.", tools=[READ])

    first = await model.request(request)

    assert [("tools" in b) for b in server.bodies] == [True, False]
    system = server.bodies[1]["messages"][0]["content"]
    assert system.startswith("Be brief.") and '"tool_calls"' in system and "read_file: Read a file." in system
    [call] = first.tool_calls
    assert (call.name, call.arguments, first.finish_reason) == ("read_file", {"path": "a.py"}, "tool_use")

    history = [*request.messages, first.to_message(), Message.tool_result(call, "1: def main(): ...")]
    second = await model.request(ModelRequest(history, tools=[READ], tools_allowed=False))

    assert second.text == "It defines `main`." and second.tool_calls == []
    sent = server.bodies[2]
    assert "tools" not in sent and "tool_choice" not in sent
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert json.loads(sent["messages"][2]["content"])["tool_calls"][0]["name"] == "read_file"
    assert "1: def main(): ..." in sent["messages"][3]["content"]
    assert "answer now" in sent["messages"][0]["content"]


async def test_ollama_with_a_tool_model_keeps_native_tools_and_json_schema():
    server = FakeServer(ollama(model_has_tools=True), RAW_ANSWER)

    await model_for(server, "http://127.0.0.1:11434/v1").request(review_request(tools=[READ]))

    [body] = server.bodies
    assert body["tools"][0]["function"]["name"] == "read_file"
    assert body["response_format"]["type"] == "json_schema"


async def test_text_protocol_offers_the_schema_in_the_prompt_so_a_tool_block_stays_possible():
    # With tools in the prompt, a json_schema grammar would forbid the tool-call block.
    server = FakeServer(lm_studio, TOOL_BLOCK)

    response = await model_for(server, tools=False).request(review_request(tools=[READ]))

    [body] = server.bodies
    assert "response_format" not in body and "tools" not in body
    assert json.dumps(REVIEW) in body["messages"][0]["content"]
    assert response.tool_calls[0].name == "read_file"


async def test_a_pinned_tools_true_the_server_refuses_names_the_setting():
    server = FakeServer(vllm_without_auto_tool_choice)

    with pytest.raises(BadRequestError, match=r"set \[providers.openai_compatible\] tools = false"):
        await model_for(server, tools=True).request(ModelRequest([Message.user("q")], tools=[READ]))


async def test_only_offered_tools_are_taken_from_a_text_reply():
    server = FakeServer(lm_studio, '{"tool_calls": [{"name": "rm_rf", "arguments": {}}]}')

    response = await model_for(server, tools=False).request(ModelRequest([Message.user("q")], tools=[READ]))

    assert response.tool_calls == []
    assert "rm_rf" in response.text


# --- config and lenient JSON ----------------------------------------------------------------


def test_the_settings_pin_the_form(tmp_path):
    (tmp_path / ".cadre.toml").write_text(
        '[providers.openai_compatible]\nstructured_output = "prompt"\ntools = false\n'
    )
    settings = load_config(tmp_path).config.providers["openai_compatible"]

    model = build_model("openai_compatible:smollm2", settings)

    assert model.accepts() == endpoints.Accepts("prompt", False)


def test_a_bad_setting_is_a_config_error(tmp_path):
    from cadre_core.errors import ConfigError

    (tmp_path / ".cadre.toml").write_text('[providers.openai_compatible]\nstructured_output = "grammar"\n')

    with pytest.raises(ConfigError, match="structured_output"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": "line one\nline two"}', {"a": "line one\nline two"}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('Sure, here it is:\n```json\n{"a": 1}\n```\nAnything else?', {"a": 1}),
        ('The answer is {"a": {"b": [1, 2]}} as requested.', {"a": {"b": [1, 2]}}),
        ('{ not json } then {"a": 1}', {"a": 1}),
        ("no object here", None),
        ('{"a": 1', None),
    ],
)
def test_model_json_is_parsed_leniently_where_safe(text, value):
    assert parse_json_text(text) == value


def test_tool_call_ids_are_unique_per_call():
    from cadre_core.models.openai_compatible import text_tool_calls

    calls = text_tool_calls(
        '{"tool_calls": [{"name": "read_file", "arguments": {"path": "a"}}, {"name": "read_file", "arguments": {}}]}',
        [READ],
    )
    assert [c.arguments for c in calls] == [{"path": "a"}, {}]
    assert len({c.id for c in calls}) == 2
    assert all(isinstance(c, ToolCall) for c in calls)


def test_the_readme_example_is_a_valid_config(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    [block] = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[providers.openai_compatible]" in b]
    (tmp_path / ".cadre.toml").write_text(block)

    settings = load_config(tmp_path).config.providers["openai_compatible"]

    assert (settings.structured_output, settings.tools) == ("json_object", False)


def test_the_settings_belong_to_openai_compatible_only(tmp_path):
    from cadre_core.errors import ConfigError

    (tmp_path / ".cadre.toml").write_text("[providers.openai]\ntools = false\n")

    with pytest.raises(ConfigError, match=r"only under \[providers.openai_compatible\]"):
        load_config(tmp_path)
