"""Optional OpenTelemetry traces: a span per MCP tool call, a child span per model attempt.

Tracing is off unless a server entry point calls `setup()` while an OTLP endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and neither
`OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise. Off, every hook is
a no-op and nothing from the OpenTelemetry SDK is imported. On, `setup()` builds a
`TracerProvider` with a `BatchSpanProcessor` and the OTLP/HTTP exporter (the `cadre-core[otel]`
extra; about 60 ms of imports), `service.name` = the server name, and installs it as the global
provider, so the MCP SDK's own `tools/call` server spans, which carry the client's trace
context, are exported too and the tool spans nest under them.

Attempt spans follow the GenAI semantic conventions (`chat <model>`, `gen_ai.*` attributes) and
are built from the attempt's ledger row, so the tokens and cost on a span are the ledger's.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cadre_core.errors import single_failure

if TYPE_CHECKING:
    from cadre_core.ledger import LedgerRow
    from cadre_core.models.base import ModelResponse

ENDPOINT_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SCOPE = "cadre"
PROVIDER_NAMES = {"google": "gcp.gemini"}
"""Cadre provider -> `gen_ai.provider.name` where the conventions name it differently."""

_NOOP = contextlib.nullcontext()
_lock = threading.Lock()


@dataclass
class _State:
    tracer: Any = None
    provider: Any = None
    owned: bool = False
    """The provider was built here from the environment, so shutdown() is ours to call."""
    warned: bool = False


_state = _State()


@dataclass
class _Totals:
    """What the attempts under one tool span added up to."""

    cost_usd: float = 0.0
    attempts: int = 0
    thread_id: str | None = None


_totals: contextvars.ContextVar[_Totals | None] = contextvars.ContextVar("cadre_tool_totals", default=None)


def requested(environ: Any = None) -> bool:
    """True when the environment asks for traces: an OTLP endpoint, and the SDK not disabled."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_ENV)


def setup(service_name: str) -> bool:
    """Start tracing for this process when the environment asks for it; True if on.

    Without the `otel` extra installed (or with a bad `OTEL_*` setting) it logs one warning
    to stderr and leaves tracing off.
    """
    if _state.tracer is not None or not requested():
        return _state.tracer is not None
    service = os.environ.get("OTEL_SERVICE_NAME") or service_name
    with _lock:
        try:
            provider = _build_provider(service)
        except ImportError as exc:
            _warn(
                "an OTLP endpoint is set but the OpenTelemetry SDK is not installed, so no traces are sent; "
                "install cadre-core[otel] (opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http) "
                "or unset OTEL_EXPORTER_OTLP_ENDPOINT",
                missing=exc.name or str(exc),
            )
            return False
        except Exception as exc:  # e.g. a malformed OTEL_* value: tracing is optional, serving is not
            _warn("OpenTelemetry could not start, so no traces are sent", error=f"{type(exc).__name__}: {exc}")
            return False
        _state.tracer, _state.provider, _state.owned = provider.get_tracer(SCOPE), provider, True
    return True


def configure(provider: Any) -> None:
    """Send spans to `provider` (a `TracerProvider`, e.g. with an in-memory exporter); None turns tracing off.

    For tests and embedding; the global provider is left alone.
    """
    with _lock:
        _state.tracer = provider.get_tracer(SCOPE) if provider is not None else None
        _state.provider, _state.owned = provider, False


def enabled() -> bool:
    return _state.tracer is not None


def shutdown() -> None:
    """Flush and stop the provider built from the environment (idempotent; spans after it are dropped)."""
    with _lock:
        provider, owned = _state.provider, _state.owned
        _state.tracer, _state.provider, _state.owned = None, None, False
    if provider is not None and owned:
        try:
            provider.shutdown()
        except Exception as exc:  # an unreachable collector must not fail the exit
            _warn("traces not flushed at exit", error=str(exc))


def tool_span(tool: str) -> contextlib.AbstractContextManager[Any]:
    """Context manager around one tool call: span `execute_tool <tool>`, current while the body runs."""
    tracer = _state.tracer
    if tracer is None:
        return _NOOP
    return _ToolSpan(tracer, tool)


def record_attempt(row: LedgerRow, response: ModelResponse | None = None) -> None:
    """A finished `chat <model>` span for one model attempt, from its ledger row.

    The span ends now and starts `row.latency_ms` earlier; its parent is the current span
    (the tool span when called under one).
    """
    tracer = _state.tracer
    if tracer is None:
        return
    totals = _totals.get()
    if totals is not None:
        totals.attempts += 1
        totals.cost_usd += row.cost_usd or 0.0
        totals.thread_id = totals.thread_id or row.thread_id
    from opentelemetry.trace import SpanKind, StatusCode

    end = time.time_ns()
    span = tracer.start_span(
        f"chat {row.model}",
        kind=SpanKind.CLIENT,
        attributes=attempt_attributes(row, response),
        start_time=end - int(row.latency_ms * 1_000_000),
    )
    if row.error_class:
        span.set_status(StatusCode.ERROR, f"{row.outcome}: {row.error_class}")
    span.end(end_time=end)


def attempt_attributes(row: LedgerRow, response: ModelResponse | None) -> dict[str, Any]:
    """GenAI semantic-convention attributes (plus `cadre.*`) for one attempt."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER_NAMES.get(row.provider, row.provider),
        "gen_ai.request.model": row.model,
        "cadre.outcome": row.outcome,
        "cadre.role": row.role,
        "cadre.attempt": row.attempt,
    }
    if response is not None:
        attrs |= {
            "gen_ai.usage.input_tokens": row.input_tokens,
            "gen_ai.usage.output_tokens": row.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": row.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": row.cache_write_tokens,
            "gen_ai.usage.reasoning.output_tokens": row.reasoning_tokens,
            "gen_ai.response.finish_reasons": [response.finish_reason],
        }
        if response.response_id:
            attrs["gen_ai.response.id"] = response.response_id
    optional = {
        "cadre.cost_usd": row.cost_usd,
        "error.type": row.error_class,
        "cadre.detector": row.detector,
        "cadre.thread_id": row.thread_id,
        "cadre.server": row.server,
        "cadre.tool": row.tool,
    }
    attrs |= {k: v for k, v in optional.items() if v not in (None, "")}
    return attrs


class _ToolSpan:
    """The tool span: current for the body; outcome, error type and the attempts' total cost at the end."""

    def __init__(self, tracer: Any, tool: str):
        self.tracer, self.tool = tracer, tool
        self.totals = _Totals()

    def __enter__(self) -> Any:
        from opentelemetry import context, trace

        self.span = self.tracer.start_span(
            f"execute_tool {self.tool}",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": self.tool},
        )
        self.token = context.attach(trace.set_span_in_context(self.span))
        self.totals_token = _totals.set(self.totals)
        return self.span

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        from opentelemetry import context
        from opentelemetry.trace import StatusCode

        span, totals = self.span, self.totals
        try:
            if exc is None:
                span.set_attribute("cadre.outcome", "ok")
            else:
                cancelled = isinstance(exc, BaseException) and not isinstance(exc, Exception)
                span.set_attribute("cadre.outcome", "cancelled" if cancelled else "error")
                span.set_attribute("error.type", type(single_failure(exc)).__name__)
                span.set_status(StatusCode.ERROR, str(exc)[:500] or type(exc).__name__)
            if totals.attempts:
                span.set_attribute("cadre.attempts", totals.attempts)
                span.set_attribute("cadre.total_cost_usd", totals.cost_usd)
            if totals.thread_id:
                span.set_attribute("cadre.thread_id", totals.thread_id)
        finally:
            _totals.reset(self.totals_token)
            context.detach(self.token)
            span.end()


def _build_provider(service: str) -> Any:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def _warn(message: str, **fields: Any) -> None:
    """One warning per process on stderr (never stdout: on stdio it is the protocol)."""
    if _state.warned:
        return
    _state.warned = True
    import structlog

    from cadre_core.logs import ensure_logging

    ensure_logging()
    structlog.get_logger("cadre.telemetry").warning(message, **fields)
