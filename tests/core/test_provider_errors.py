"""Failure mapping for every provider: HTTP statuses, transport errors and bad 200 bodies
become `cadre_core.errors` classes, and each call makes exactly one HTTP request."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from cadre_core import errors
from cadre_core.models.anthropic import AnthropicModel
from cadre_core.models.base import Model
from cadre_core.models.google import GoogleModel
from cadre_core.models.openai import OpenAIModel
from cadre_core.models.openai_compatible import OpenAICompatibleModel
from cadre_core.models.status import retry_after_seconds
from cadre_core.testing import RecordingHandler, UnexpectedRequestError, mock_http_client
from tests.core.wire import ask, fixture

pytestmark = pytest.mark.anyio

REQUEST = ask(max_output_tokens=1024)


# --- each vendor's success body, empty body and error envelope ---------------------------

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}


def anthropic_error(status: int, message: str) -> dict:
    return {
        "type": "error",
        "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


def openai_error(status: int, message: str) -> dict:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def google_error(status: int, message: str) -> dict:
    return {"error": {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}}


def anthropic_empty() -> dict:
    body = fixture("anthropic_text")
    body["content"] = []
    return body


def openai_empty() -> dict:
    body = fixture("openai_message")
    body["output"] = [body["output"][0]]  # only the reasoning item, no message
    return body


def google_empty() -> dict:
    body = fixture("google_text")
    body["candidates"][0]["content"] = {"role": "model", "parts": [{"text": "thinking...", "thought": True}]}
    return body


def chat_empty() -> dict:
    body = fixture("chat_text")
    body["choices"][0]["message"]["content"] = ""
    return body


@dataclass(frozen=True)
class Vendor:
    provider: str
    cls: type[Model]
    model: str
    key_env: str
    error_body: Callable[[int, str], dict]
    ok_body: Callable[[], dict]
    empty_body: Callable[[], dict]
    kwargs: tuple[tuple[str, Any], ...] = ()

    def make(self, handler: RecordingHandler, **kw: Any) -> Model:
        options = dict(self.kwargs) | kw
        return self.cls(self.model, api_key="test-key", http_client=mock_http_client(handler), **options)

    def __str__(self) -> str:
        return self.provider


VENDORS = [
    Vendor(
        "anthropic",
        AnthropicModel,
        "claude-sonnet-5-5",
        "ANTHROPIC_API_KEY",
        anthropic_error,
        lambda: fixture("anthropic_text"),
        anthropic_empty,
    ),
    Vendor(
        "openai",
        OpenAIModel,
        "gpt-6.1-sol",
        "OPENAI_API_KEY",
        openai_error,
        lambda: fixture("openai_message"),
        openai_empty,
    ),
    Vendor(
        "google",
        GoogleModel,
        "gemini-3-flash-preview",
        "GEMINI_API_KEY",
        google_error,
        lambda: fixture("google_text"),
        google_empty,
    ),
    Vendor(
        "openai_compatible",
        OpenAICompatibleModel,
        "qwen3:8b",
        "OPENAI_COMPATIBLE_API_KEY",
        openai_error,
        lambda: fixture("chat_text"),
        chat_empty,
        kwargs=(("base_url", "http://localhost:11434/v1"),),
    ),
]
VENDOR_BY_NAME = {v.provider: v for v in VENDORS}
all_vendors = pytest.mark.parametrize("vendor", VENDORS, ids=str)


async def expect_error(vendor: Vendor, failure: Any, error_cls: type[errors.ModelError], **kw: Any):
    """Send one request that meets `failure`; a second, successful answer is queued so an
    SDK retry would make the call succeed and the test fail."""
    handler = RecordingHandler(failure, (200, vendor.ok_body()))
    model = vendor.make(handler, **kw)
    with pytest.raises(error_cls) as info:
        await model.request(REQUEST)
    assert len(handler.requests) == 1, "the SDK must not retry; the router owns retries"
    err = info.value
    assert err.provider == vendor.provider
    assert err.model == vendor.model
    return err


# --- HTTP statuses ------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCase:
    status: int
    message: str
    error_cls: type[errors.ModelError]
    retryable: bool
    fallback: bool
    headers: tuple[tuple[str, str], ...] = ()
    retry_after: float | None = None


STATUS_CASES = {
    "429-rate-limit": StatusCase(
        429,
        "Number of request tokens has exceeded your per-minute rate limit",
        errors.RateLimitError,
        retryable=True,
        fallback=True,
        headers=(("retry-after", "7"),),
        retry_after=7.0,
    ),
    "529-overloaded": StatusCase(
        529, "Overloaded", errors.OverloadedError, True, True, (("retry-after", "3"),), retry_after=3.0
    ),
    "503-unavailable": StatusCase(
        503, "The model is overloaded. Please try again later.", errors.OverloadedError, True, True
    ),
    "500-server": StatusCase(500, "Internal server error", errors.ServerError, True, True),
    "504-gateway-timeout": StatusCase(504, "Deadline exceeded", errors.ModelTimeoutError, True, True),
    "401-auth": StatusCase(401, "invalid x-api-key", errors.AuthError, retryable=False, fallback=False),
    "403-forbidden": StatusCase(
        403, "Your API key does not have permission to use the specified resource.", errors.AuthError, False, False
    ),
    "404-model": StatusCase(404, "model: claude-old-1 not found", errors.ModelNotFoundError, False, True),
    "400-bad-request": StatusCase(
        400, "tools.0.input_schema: JSON schema is invalid", errors.BadRequestError, False, False
    ),
}


@all_vendors
@pytest.mark.parametrize("case", list(STATUS_CASES.values()), ids=list(STATUS_CASES))
async def test_http_status_maps_to_error_class(vendor: Vendor, case: StatusCase):
    failure = (case.status, vendor.error_body(case.status, case.message), dict(case.headers))

    err = await expect_error(vendor, failure, case.error_cls)

    assert type(err) is case.error_cls
    assert err.__cause__ is not None, "the SDK's exception is kept as the cause"
    assert err.status_code == case.status
    assert err.retryable is case.retryable
    assert err.fallback is case.fallback
    assert err.retry_after == case.retry_after
    assert case.message in str(err), "the vendor's own message is kept"


@all_vendors
@pytest.mark.parametrize("status", [401, 403])
async def test_auth_error_names_the_env_var_to_fix(vendor: Vendor, status: int):
    failure = (status, vendor.error_body(status, "invalid api key"))

    err = await expect_error(vendor, failure, errors.AuthError)

    assert err.env_var == vendor.key_env
    assert vendor.key_env in str(err)


@all_vendors
async def test_auth_error_names_a_custom_env_var(vendor: Vendor):
    failure = (401, vendor.error_body(401, "invalid api key"))

    err = await expect_error(vendor, failure, errors.AuthError, key_env="TEAM_LLM_KEY")

    assert err.env_var == "TEAM_LLM_KEY"
    assert "Check TEAM_LLM_KEY" in str(err)


async def test_google_invalid_api_key_on_400_is_an_auth_error():
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        }
    }

    err = await expect_error(VENDOR_BY_NAME["google"], (400, body), errors.AuthError)

    assert err.status_code == 400
    assert not err.retryable
    assert not err.fallback
    assert "GEMINI_API_KEY" in str(err)


async def test_google_rate_limit_with_retry_info_in_the_body():
    body = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"},
            ],
        }
    }

    err = await expect_error(VENDOR_BY_NAME["google"], (429, body), errors.RateLimitError)

    assert err.retryable
    assert err.retry_after == 17.0


CONTEXT_MESSAGES = [
    ("anthropic", "prompt is too long: 215304 tokens > 200000 maximum"),
    (
        "anthropic",
        "input length and `max_tokens` exceed context limit: 187254 + 64000 > 200000, "
        "decrease input length or `max_tokens` and try again",
    ),
    ("openai", "Your input exceeds the context window of this model. Please adjust your input and try again."),
    (
        "openai_compatible",
        "This model's maximum context length is 32768 tokens. However, you requested 40212 tokens "
        "(32020 in the messages, 8192 in the completion). Please reduce the length of the messages or completion.",
    ),
    ("google", "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576)."),
]


@pytest.mark.parametrize(
    ("provider", "message"),
    CONTEXT_MESSAGES,
    ids=["anthropic-prompt-too-long", "anthropic-context-limit", "openai", "vllm", "google"],
)
async def test_context_window_message_on_400_is_a_context_window_error(provider: str, message: str):
    vendor = VENDOR_BY_NAME[provider]

    err = await expect_error(vendor, (400, vendor.error_body(400, message)), errors.ContextWindowError)

    assert err.status_code == 400
    assert err.fallback, "a bigger-context candidate may succeed"
    assert not err.retryable, "the same prompt will not fit on a retry"


async def test_anthropic_413_request_too_large_is_a_context_window_error():
    vendor = VENDOR_BY_NAME["anthropic"]
    failure = (413, anthropic_error(413, "Request exceeds the maximum allowed number of bytes."))

    err = await expect_error(vendor, failure, errors.ContextWindowError)

    assert err.status_code == 413


@all_vendors
async def test_html_error_page_from_a_proxy_is_a_server_error(vendor: Vendor):
    page = httpx2.Response(
        502, text="<html><body><h1>502 Bad Gateway</h1></body></html>", headers={"content-type": "text/html"}
    )

    err = await expect_error(vendor, page, errors.ServerError)

    assert err.status_code == 502
    assert err.retryable


# --- retry-after headers ------------------------------------------------------------------


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@all_vendors
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({"retry-after": "not-a-number"}, None),
        ({"retry-after": "inf"}, None),
        ({}, None),
    ],
    ids=["seconds", "fraction", "ms-wins", "garbage", "infinite", "absent"],
)
async def test_retry_after_is_parsed_from_headers(vendor: Vendor, headers: dict, expected: float | None):
    failure = (429, vendor.error_body(429, "Rate limit reached"), headers)

    err = await expect_error(vendor, failure, errors.RateLimitError)

    assert err.retry_after == expected


@all_vendors
async def test_retry_after_as_an_http_date(vendor: Vendor):
    failure = (429, vendor.error_body(429, "Rate limit reached"), {"retry-after": http_date(30)})

    err = await expect_error(vendor, failure, errors.RateLimitError)

    assert err.retry_after is not None
    assert 25 <= err.retry_after <= 30


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after-ms": "oops", "retry-after": "3"}, 3.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 -0000"}, 0.0),
        ({"retry-after": ""}, None),
    ],
)
def test_retry_after_seconds_edge_cases(headers, expected):
    assert retry_after_seconds(headers) == expected


# --- transport failures -------------------------------------------------------------------


@all_vendors
@pytest.mark.parametrize(
    ("exception", "error_cls"),
    [
        (httpx2.ReadTimeout("The read operation timed out"), errors.ModelTimeoutError),
        (httpx2.ConnectTimeout("timed out"), errors.ModelTimeoutError),
        (httpx2.ConnectError("[Errno 111] Connection refused"), errors.ConnectionFailedError),
        (httpx2.RemoteProtocolError("Server disconnected without sending a response."), errors.ConnectionFailedError),
    ],
    ids=["read-timeout", "connect-timeout", "connect-error", "disconnected"],
)
async def test_transport_failures_map_to_retryable_errors(vendor: Vendor, exception: Exception, error_cls):
    err = await expect_error(vendor, exception, error_cls)

    assert type(err) is error_cls
    assert isinstance(err.__cause__, Exception)
    assert err.retryable
    assert err.fallback
    assert err.status_code is None


# --- bad 200 bodies -----------------------------------------------------------------------


@all_vendors
@pytest.mark.parametrize(
    "response",
    [
        httpx2.Response(200, content=b'{"id": "msg_01", "content": [', headers={"content-type": "application/json"}),
        httpx2.Response(200, content=b"upstream said: {not json", headers={"content-type": "text/plain"}),
        httpx2.Response(200, content=b"<html>Login required</html>", headers={"content-type": "text/html"}),
        httpx2.Response(200, json={}),
        httpx2.Response(200, json=[]),
        # json's decoder recurses per level, so this raises RecursionError rather than ValueError
        httpx2.Response(200, content=b'{"id": ' + b"[" * 100_000, headers={"content-type": "application/json"}),
    ],
    ids=["truncated-json", "text-plain", "html", "empty-object", "json-array", "too-deep"],
)
async def test_malformed_200_body_is_a_bad_response(vendor: Vendor, response: httpx2.Response):
    err = await expect_error(vendor, response, errors.BadResponseError)

    assert err.retryable
    assert err.fallback


@all_vendors
async def test_empty_content_on_200_is_a_bad_response(vendor: Vendor):
    err = await expect_error(vendor, (200, vendor.empty_body()), errors.BadResponseError)

    assert "empty" in str(err)
    assert err.retryable


# --- exactly one request per call ---------------------------------------------------------


@all_vendors
@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
async def test_sdk_makes_one_request_even_for_statuses_it_would_retry(vendor: Vendor, status: int):
    # x-should-retry asks the Stainless SDKs to retry; with retries off they must not.
    failure = (status, vendor.error_body(status, "try again"), {"x-should-retry": "true", "retry-after": "0"})
    handler = RecordingHandler(failure, (200, vendor.ok_body()))

    with pytest.raises(errors.ModelError):
        await vendor.make(handler).request(REQUEST)

    assert len(handler.requests) == 1


@all_vendors
async def test_success_is_one_request(vendor: Vendor):
    handler = RecordingHandler((200, vendor.ok_body()))

    response = await vendor.make(handler).request(REQUEST)

    assert response.text
    assert len(handler.requests) == 1


@pytest.mark.parametrize("cls", [OpenAIModel, AnthropicModel, GoogleModel, OpenAICompatibleModel])
async def test_a_refused_connection_names_the_url_it_tried(cls):
    """httpx says only "All connection attempts failed"; the error must say where (a real closed loopback port)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again on exit: nothing listens there
    model = cls("m", api_key="test-key", base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(errors.ConnectionFailedError) as info:
        await model.request(ask())
    assert f"cannot connect to http://127.0.0.1:{port}/v1" in str(info.value)


@all_vendors
async def test_a_request_with_nothing_queued_fails_the_test(vendor: Vendor):
    """The fake answers once; a second call must not be answered by a replay, nor be turned by the
    SDK (which catches `Exception`) into a connection error a router would fall back from."""
    model = vendor.make(RecordingHandler((200, vendor.ok_body())))
    await model.request(REQUEST)
    with pytest.raises(UnexpectedRequestError, match="unexpected request 2"):
        await model.request(REQUEST)
