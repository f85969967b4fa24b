"""OpenTelemetry traces: a tool span per MCP tool call, a `chat <model>` child span per model attempt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import anyio
import anyio.lowlevel
import pytest
from mcp import Client, StdioServerParameters
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from cadre_core import telemetry
from cadre_core.errors import ModelNotFoundError, RateLimitError
from cadre_core.models.base import ModelResponse, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.pricing import price
from cadre_core.testing import wire_fake_models
from tests.core.conftest import make_config
from tests.servers.conftest import make_repo

pytestmark = pytest.mark.anyio
USAGE = Usage(input_tokens=1000, cache_read_tokens=400, cache_write_tokens=0, output_tokens=200, reasoning_tokens=50)


@pytest.fixture
def spans():
    """Spans captured in memory through `telemetry.configure`; tracing off again afterwards."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(provider)
    yield exporter
    telemetry.configure(None)
    provider.shutdown()


def answer_text(text: str = "Use a lock.") -> str:
    return json.dumps({"answer": text, "key_points": ["k"], "risks": ["r"], "next_steps": ["n"],
                       "confidence": "high", "citations": []})  # fmt: skip


def oracle(tmp_path, models: dict, *, retries: int = 2):
    """A real oracle server whose router uses the given fake models; its ledger."""
    from cadre_oracle.server import create_server

    server = create_server(root=make_repo(tmp_path / "ws", {"app/store.py": "class Store:\n    pass\n"}))
    config = make_config(oracle=list(models))
    config.router.retries_per_candidate = retries
    ledger = wire_fake_models(
        server, models, config=config, state=tmp_path, sleep=lambda s: anyio.lowlevel.checkpoint()
    )
    return server, ledger


def by_name(exporter) -> dict[str, list]:
    out: dict[str, list] = {}
    for span in exporter.get_finished_spans():
        out.setdefault(span.name, []).append(span)
    return out


async def test_a_fallback_gives_two_attempt_spans_under_one_tool_span(tmp_path, keys, spans):
    def missing(request, model):
        raise ModelNotFoundError("no such model", provider="openai", model="gpt-5.2")

    good = FunctionModel(lambda r, m: ModelResponse(text=answer_text(), usage=USAGE, response_id="resp_1"))
    models = {"openai:gpt-5.2": FunctionModel(missing), "anthropic:claude-opus-4-5": good}
    server, ledger = oracle(tmp_path, models)
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "Is Store thread-safe?"})
    assert not result.is_error, result.content
    thread_id = result.structured_content["thread_id"]

    names = by_name(spans)
    assert sorted(names) == ["chat claude-opus-4-5", "chat gpt-5.2", "execute_tool consult_oracle"]
    (tool,), (failed,), (ok,) = (
        names["execute_tool consult_oracle"],
        names["chat gpt-5.2"],
        names["chat claude-opus-4-5"],
    )
    assert failed.parent.span_id == ok.parent.span_id == tool.context.span_id
    assert failed.context.trace_id == ok.context.trace_id == tool.context.trace_id
    assert failed.end_time <= ok.start_time and tool.start_time <= failed.start_time and ok.end_time <= tool.end_time
    assert failed.kind == ok.kind == SpanKind.CLIENT

    assert failed.status.status_code == StatusCode.ERROR
    assert dict(failed.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-5.2",
        "error.type": "ModelNotFoundError",
        "cadre.outcome": "fallback",
        "cadre.role": "oracle",
        "cadre.attempt": 1,
        "cadre.thread_id": thread_id,
        "cadre.server": "cadre-oracle",
        "cadre.tool": "consult_oracle",
    }

    cost = price(USAGE, "anthropic", "claude-opus-4-5")[0]
    assert cost is not None and cost > 0
    assert ok.status.status_code == StatusCode.UNSET
    assert dict(ok.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-opus-4-5",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 200,
        "gen_ai.usage.cache_read.input_tokens": 400,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 50,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.response.id": "resp_1",
        "cadre.cost_usd": cost,
        "cadre.outcome": "ok",
        "cadre.role": "oracle",
        "cadre.attempt": 1,
        "cadre.thread_id": thread_id,
        "cadre.server": "cadre-oracle",
        "cadre.tool": "consult_oracle",
    }
    assert dict(tool.attributes) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "consult_oracle",
        "cadre.outcome": "ok",
        "cadre.attempts": 2,
        "cadre.total_cost_usd": cost,
        "cadre.thread_id": thread_id,
    }
    assert tool.status.status_code == StatusCode.UNSET

    ledger.flush()  # the spans carry exactly what the ledger rows got
    rows = ledger.store.rows()
    assert [(r["model"], r["outcome"], r["cost_usd"], r["input_tokens"]) for r in rows] == [
        ("gpt-5.2", "fallback", None, 0),
        ("claude-opus-4-5", "ok", cost, 1000),
    ]
    ledger.close()


async def test_retries_and_a_repair_each_get_a_span(tmp_path, keys, spans):
    replies = iter([RateLimitError("slow down", provider="openai", model="gpt-5.2"),
                    ModelResponse(text="{not json", usage=Usage(input_tokens=7, output_tokens=3)),
                    ModelResponse(text=answer_text(), usage=USAGE)])  # fmt: skip

    def flaky(request, model):
        reply = next(replies)
        if isinstance(reply, Exception):
            raise reply
        return reply

    server, ledger = oracle(tmp_path, {"openai:gpt-5.2": FunctionModel(flaky)})
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
    assert not result.is_error, result.content
    attempts = sorted(by_name(spans)["chat gpt-5.2"], key=lambda s: s.start_time)
    got = [(s.attributes["cadre.attempt"], s.attributes["cadre.outcome"], s.attributes.get("cadre.detector"),
            s.attributes.get("error.type"), s.status.status_code) for s in attempts]  # fmt: skip
    assert got == [
        (1, "error", None, "RateLimitError", StatusCode.ERROR),
        (2, "off_rails", "invalid_structured_output", None, StatusCode.UNSET),
        (3, "ok", None, None, StatusCode.UNSET),
    ]
    assert attempts[1].attributes["gen_ai.usage.input_tokens"] == 7
    assert (
        attempts[1].attributes["cadre.cost_usd"]
        == price(Usage(input_tokens=7, output_tokens=3), "openai", "gpt-5.2")[0]
    )
    assert attempts[2].attributes["cadre.cost_usd"] == price(USAGE, "openai", "gpt-5.2")[0]
    (tool,) = by_name(spans)["execute_tool consult_oracle"]
    assert tool.attributes["cadre.attempts"] == 3
    assert tool.attributes["cadre.total_cost_usd"] == pytest.approx(
        attempts[1].attributes["cadre.cost_usd"] + attempts[2].attributes["cadre.cost_usd"]
    )
    ledger.close()


async def test_a_failed_tool_call_marks_its_span_as_an_error(tmp_path, keys, spans):
    def missing(request, model):
        raise ModelNotFoundError("no such model", provider="openai", model="gpt-5.2")

    server, ledger = oracle(tmp_path, {"openai:gpt-5.2": FunctionModel(missing)})
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
    assert result.is_error
    names = by_name(spans)
    (tool,), (attempt,) = names["execute_tool consult_oracle"], names["chat gpt-5.2"]
    assert tool.status.status_code == StatusCode.ERROR
    assert tool.attributes["error.type"] == "AllCandidatesFailedError"
    assert tool.attributes["cadre.outcome"] == "error"
    assert attempt.attributes["cadre.outcome"] == "error"  # the last candidate: nothing to fall back to
    assert attempt.parent.span_id == tool.context.span_id
    ledger.close()


async def test_without_tracing_the_hooks_do_nothing(tmp_path, keys):
    telemetry.configure(None)
    assert not telemetry.enabled()
    assert telemetry.tool_span("x") is telemetry.tool_span("y")  # one shared no-op
    server, ledger = oracle(tmp_path, {"openai:gpt-5.2": FunctionModel(lambda r, m: answer_text())})
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
    assert not result.is_error
    ledger.close()


def test_the_environment_decides_whether_tracing_is_asked_for():
    assert not telemetry.requested({})
    assert telemetry.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert telemetry.requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not telemetry.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})
    assert not telemetry.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "TRUE"})
    assert not telemetry.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"})


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env={**base, **env}, timeout=60
    )


OFF_CHECK = """
    import sys
    from cadre_core import telemetry
    import cadre_oracle.server, cadre_search.server
    cadre_oracle.server.create_server()
    on = telemetry.setup("cadre-oracle")
    with telemetry.tool_span("consult_oracle"):
        pass
    loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
    print(on, loaded)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "env",
    [{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}],
    ids=["no-endpoint", "sdk-disabled"],
)
def test_off_imports_nothing_from_the_sdk(env):
    out = run_python(OFF_CHECK, **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False []"


def test_on_sends_to_an_otlp_provider_named_after_the_server():
    out = run_python(
        """
        from cadre_core import telemetry
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        on = telemetry.setup("cadre-oracle")
        provider = trace.get_tracer_provider()
        (processor,) = provider._active_span_processor._span_processors
        exporter = processor._batch_processor._exporter
        print(on, provider.resource.attributes["service.name"], type(processor).__name__,
              isinstance(exporter, OTLPSpanExporter), exporter._endpoint)
        telemetry.shutdown()
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "cadre-oracle", "BatchSpanProcessor", "True", "http://127.0.0.1:9/v1/traces"]


def test_an_endpoint_without_the_sdk_warns_once_on_stderr_and_carries_on():
    out = run_python(
        """
        import sys
        sys.modules["opentelemetry.sdk"] = None  # as if cadre-core[otel] were not installed
        from cadre_core import telemetry
        first, second = telemetry.setup("cadre-oracle"), telemetry.setup("cadre-oracle")
        with telemetry.tool_span("consult_oracle"):
            pass
        telemetry.shutdown()
        sys.stderr.flush()
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    warning = json.loads(lines[0])
    assert warning["level"] == "warning" and "cadre-core[otel]" in warning["event"]


class Collector(BaseHTTPRequestHandler):
    """A loopback OTLP/HTTP receiver that keeps every /v1/traces body."""

    bodies: ClassVar[list[bytes]] = []
    received: ClassVar[threading.Event] = threading.Event()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/v1/traces":
            self.bodies.append(body)
            self.received.set()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.slow
async def test_a_stdio_server_exports_its_spans_over_otlp_when_it_exits(tmp_path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    repo = make_repo(tmp_path / "repo", {"app/parser.py": "def parse_header(line):\n    return line\n"})
    Collector.bodies, Collector.received = [], threading.Event()
    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    env = {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
    }
    try:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "cadre_search", "--root", str(repo)], env=env
        )
        async with Client(params) as client:
            with anyio.fail_after(30):
                result = await client.call_tool("find_symbol", {"name": "parse_header"})
        assert not result.is_error
        # the exit flush may land just after the pipe closes
        assert await anyio.to_thread.run_sync(Collector.received.wait, 10)
    finally:
        collector.shutdown()
        collector.server_close()
    spans, services = {}, set()
    for body in Collector.bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"}
            for scope in resource_spans.scope_spans:
                spans |= {s.name: s for s in scope.spans}
    assert services == {"cadre-search"}
    tool = spans["execute_tool find_symbol"]
    assert {a.key: a.value.string_value for a in tool.attributes}["gen_ai.tool.name"] == "find_symbol"
    # the MCP SDK's own server span is exported through the same provider, and ours sits under it
    assert tool.parent_span_id == spans["tools/call find_symbol"].span_id
