"""Faults never take a role offline: the oracle over all three vendors' real SDKs, against one loopback
HTTP server that speaks OpenAI Responses, Anthropic Messages and Gemini generateContent and injects a
seeded 30% of transient faults (or takes one vendor down entirely).

Each fault is what the vendor documents, with its body shape:
- OpenAI (https://platform.openai.com/docs/guides/error-codes): 429 "Rate limit reached for requests"
  (rate_limit_exceeded), 500 "The server had an error while processing your request", 503 "The engine is
  currently overloaded"; the body is `{"error": {"message", "type", "param", "code"}}`.
- Anthropic (https://docs.anthropic.com/en/api/errors): 429 rate_limit_error with `retry-after`, 500
  api_error, 529 overloaded_error; the body is `{"type": "error", "error": {"type", "message"}}`.
- Gemini (https://ai.google.dev/gemini-api/docs/troubleshooting): 429 RESOURCE_EXHAUSTED (with a
  google.rpc.RetryInfo `retryDelay`), 500 INTERNAL, 503 UNAVAILABLE "The model is overloaded"; the body is
  `{"error": {"code", "message", "status", "details"}}`.
Plus, for all three: no answer before the time-out, a truncated JSON body, and a well-formed reply whose
answer is not the JSON the oracle asked for (which the router repairs).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import anyio
import pytest
from mcp import Client

from cadre_oracle.server import create_server
from tests.e2e.loopback import send_json, serving
from tests.servers.conftest import make_repo

pytestmark = pytest.mark.anyio

FAULT_RATE = 0.3
FAULTS = ("rate_limited", "server_error", "overloaded", "no_answer", "truncated_body", "invalid_answer")
TIME_OUT_S = 0.5
"""The providers' time-out in this test; a `no_answer` fault holds its reply longer than this."""
ANSWER = {"answer": "Use a lock.", "key_points": ["k"], "risks": ["r"], "next_steps": ["n"],
          "confidence": "high", "citations": []}  # fmt: skip


def vendor_of(path: str) -> str:
    if path.endswith("/responses"):
        return "openai"
    if path.endswith("/messages"):
        return "anthropic"
    if path.endswith(":generateContent"):
        return "google"
    raise AssertionError(f"unexpected path {path}")


def success(vendor: str, model: str, text: str) -> dict:
    if vendor == "openai":
        return {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": model,
                "error": None, "incomplete_details": None,
                "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                            "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                "usage": {"input_tokens": 900, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 60,
                          "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 960}}  # fmt: skip
    if vendor == "anthropic":
        return {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 900, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                          "output_tokens": 60}}  # fmt: skip
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 60, "totalTokenCount": 960},
            "modelVersion": model, "responseId": "r1"}  # fmt: skip


def vendor_error(vendor: str, fault: str) -> tuple[int, dict, dict]:
    """(status, body, headers) of a vendor's documented error for `fault`."""
    if vendor == "openai":
        status, message, code = {
            "rate_limited": (429, "Rate limit reached for requests", "rate_limit_exceeded"),
            "server_error": (500, "The server had an error while processing your request.", None),
            "overloaded": (503, "The engine is currently overloaded, please try again later.", None),
        }[fault]
        headers = {"retry-after-ms": "30"} if status == 429 else {}
        kind = "requests" if status == 429 else "server_error"
        return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers
    if vendor == "anthropic":
        status, kind, message = {
            "rate_limited": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute limit."),
            "server_error": (500, "api_error", "Internal server error"),
            "overloaded": (529, "overloaded_error", "Overloaded"),
        }[fault]
        headers = {"retry-after": "1"} if status == 429 else {}  # longer than max_retry_after_s: fall back at once
        return status, {"type": "error", "error": {"type": kind, "message": message}}, headers
    status, code, message = {
        "rate_limited": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        "server_error": (500, "INTERNAL", "An internal error has occurred."),
        "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    }[fault]
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.03s"}] if status == 429 else []
    return status, {"error": {"code": status, "message": message, "status": code, "details": details}}, {}


class FaultyVendors(BaseHTTPRequestHandler):
    """All three vendor APIs on one loopback port; counts every request it receives, per vendor."""

    rng: ClassVar[random.Random] = random.Random(0)
    fault_rate: ClassVar[float] = FAULT_RATE
    """Of the vendors that are not down."""
    lock: ClassVar[threading.Lock] = threading.Lock()
    received: ClassVar[Counter] = Counter()
    injected: ClassVar[Counter] = Counter()
    down: ClassVar[set[str]] = set()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        vendor = vendor_of(self.path.split("?")[0])
        model = body.get("model") or self.path.rsplit("/", 1)[-1].split(":")[0]
        with self.lock:
            self.received[vendor] += 1
            if vendor in self.down:
                fault = "overloaded"
            elif self.rng.random() < self.fault_rate:  # seeded; the kinds take turns
                fault = FAULTS[sum(self.injected.values()) % len(FAULTS)]
                self.injected[fault] += 1
            else:
                fault = None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up on a late reply
            self.answer(vendor, model, fault)

    def answer(self, vendor: str, model: str, fault: str | None) -> None:
        if fault in ("rate_limited", "server_error", "overloaded"):
            status, payload, headers = vendor_error(vendor, fault)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"content-type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if fault == "no_answer":
            time.sleep(TIME_OUT_S * 2)
        if fault == "truncated_body":
            data = json.dumps(success(vendor, model, json.dumps(ANSWER))).encode()[:40]
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        text = "Sure! The answer is: use a lock." if fault == "invalid_answer" else json.dumps(ANSWER)
        send_json(self, success(vendor, model, text))

    def log_message(self, *args):
        return


@pytest.fixture
def vendors():
    FaultyVendors.rng = random.Random(20261206)
    FaultyVendors.received, FaultyVendors.injected, FaultyVendors.down = Counter(), Counter(), set()
    FaultyVendors.fault_rate = FAULT_RATE
    with serving(FaultyVendors) as url:
        yield url.removesuffix("/v1")


def oracle_server(root: Path, base: str, tmp_path: Path, monkeypatch):
    """The oracle as a user configures it: the default route, real SDKs pointed at the loopback vendors."""
    config = tmp_path / "cadre.toml"
    providers = {"openai": f"{base}/v1", "anthropic": base, "google": base}
    config.write_text(
        "".join(f'[providers.{p}]\nbase_url = "{url}"\ntimeout_s = {TIME_OUT_S}\n' for p, url in providers.items())
        + "[router]\nbackoff_initial_s = 0.01\nbackoff_max_s = 0.05\nmax_retry_after_s = 0.5\n"
        + f'[paths]\nledger = "{tmp_path / "ledger.sqlite"}"\nthreads = "{tmp_path / "threads.sqlite"}"\n'
        + f'jobs = "{tmp_path / "jobs.sqlite"}"\n'
    )
    monkeypatch.setenv("CADRE_CONFIG", str(config))
    return create_server(root=root)


async def ask_many(server, calls: int, concurrency: int) -> tuple[int, list[str]]:
    """(answered, errors) of `calls` consult_oracle calls, `concurrency` at a time."""
    answered, errors = 0, []
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(client, i):
        nonlocal answered
        async with limiter:
            result = await client.call_tool("consult_oracle", {"question": f"Is Store thread-safe? ({i})"})
        if result.is_error:
            errors.append(result.content[0].text)
        else:
            assert result.structured_content["answer"] == "Use a lock."
            answered += 1

    async with Client(server) as client, anyio.create_task_group() as tg:
        for i in range(calls):
            tg.start_soon(one, client, i)
    return answered, errors


def assert_every_attempt_has_its_row(server) -> None:
    """Every request a vendor saw has its ledger row, and every row its request, except attempts that timed
    out on our side before the request was read: on a loaded machine the time limit can fire while the
    request still waits in the loopback server's accept queue, so the row is real but the vendor never saw it."""
    ledger = server.kit.ledger
    assert ledger.flush()
    rows = [r for r in ledger.store.rows() if r["provider"] != "sampling"]
    attempts = Counter(r["provider"] for r in rows)
    timed_out = Counter(r["provider"] for r in rows if r["error_class"] == "ModelTimeoutError")
    for vendor in set(attempts) | set(FaultyVendors.received):
        seen = FaultyVendors.received[vendor]
        assert seen <= attempts[vendor] <= seen + timed_out[vendor], (vendor, seen, attempts, timed_out)


@pytest.fixture
def workspace(tmp_path):
    return make_repo(tmp_path / "ws", {"app/store.py": "class Store:\n    def put(self, k, v):\n        self.d = v\n"})


@pytest.mark.parametrize(("calls", "concurrency"), [(100, 1), (100, 4)], ids=["sequential", "concurrent-4"])
async def test_thirty_percent_faults_on_every_vendor_still_answer_99_percent(
    vendors, workspace, tmp_path, monkeypatch, keys, calls, concurrency
):
    server = oracle_server(workspace, vendors, tmp_path, monkeypatch)
    started = time.monotonic()
    with anyio.fail_after(60):
        answered, errors = await ask_many(server, calls, concurrency)
    assert answered >= 0.99 * calls, errors[:3]
    assert time.monotonic() - started < 60
    # the faults really happened, every kind of them
    assert set(FaultyVendors.injected) == set(FAULTS)
    assert sum(FaultyVendors.injected.values()) >= 0.2 * sum(FaultyVendors.received.values())
    assert_every_attempt_has_its_row(server)
    rows = server.kit.ledger.store.rows()
    assert {"ModelTimeoutError", "BadResponseError", "RateLimitError", "OverloadedError", "ServerError"} <= {
        r["error_class"] for r in rows
    }
    assert any(r["detector"] == "invalid_structured_output" for r in rows)


@pytest.mark.parametrize("down", [["openai"], ["openai", "anthropic"]], ids=["openai-down", "two-down"])
async def test_vendors_entirely_down_still_answer_every_call(vendors, workspace, tmp_path, monkeypatch, keys, down):
    FaultyVendors.down.update(down)  # from the oracle route's first choice on; the others answer
    FaultyVendors.fault_rate = 0.0
    server = oracle_server(workspace, vendors, tmp_path, monkeypatch)
    calls = 40
    with anyio.fail_after(60):
        answered, errors = await ask_many(server, calls, 4)
    assert (answered, errors) == (calls, []), "\n".join(errors)
    assert_every_attempt_has_its_row(server)
    # the circuits opened: each dead vendor saw far fewer than the 3 attempts per call it would without one
    router = server.kit.router
    for vendor, model in (("openai", "gpt-6.1-sol"), ("anthropic", "claude-opus-5-5"))[: len(down)]:
        assert FaultyVendors.received[vendor] < calls
        assert router.breaker(f"{vendor}:{model}").state(router.clock()) != "closed"
