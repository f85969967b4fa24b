"""What a tool call spent, and how its failures read: `tool_errors` wraps every tool.

Each model call a tool makes is a `CallInfo` (`Kit.new_call`), recorded in the running tool call's
context. The wrapper sums them into the result's `cost_usd` and `tokens`, and names the spend in the
error when the tool fails, so no tool body adds up its own cost.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import structlog
from mcp.server.mcpserver.exceptions import ToolError

from cadre_core import telemetry
from cadre_core.call import CallInfo
from cadre_core.errors import ECHO_LIMIT, CadreError, clip, input_failure, single_failure
from cadre_core.results import NO_TOKENS

log = structlog.get_logger("cadre.accounting")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_tool_calls: ContextVar[list[CallInfo] | None] = ContextVar("cadre_tool_calls", default=None)
"""The model-call records of the tool call running in this context (tasks it starts share the list)."""


def record(call: CallInfo) -> CallInfo:
    """Count `call` toward the running tool call's spend (nothing when no tool call is recording)."""
    if (calls := _tool_calls.get()) is not None:
        calls.append(call)
    return call


@contextmanager
def recording() -> Iterator[list[CallInfo]]:
    """Collect the model calls made in this block (a tool call, or a background job's run)."""
    calls: list[CallInfo] = []
    token = _tool_calls.set(calls)
    try:
        yield calls
    finally:
        _tool_calls.reset(token)


def totals(calls: list[CallInfo]) -> tuple[float | None, dict[str, int]]:
    """The calls' cost (every attempt, failed and repaired ones included; None when only unpriced models
    were paid for) and their tokens."""
    cost = round(sum(c.usage_cost_usd for c in calls), 6)
    tokens = dict(NO_TOKENS)
    for c in calls:
        u = c.usage
        tokens["input"] += u.input_tokens
        tokens["output"] += u.output_tokens
        tokens["reasoning"] += u.reasoning_tokens
        tokens["cache_read"] += u.cache_read_tokens
    return (None if not cost and any(c.unpriced for c in calls) else cost), tokens


def with_cost(result: Any, calls: list[CallInfo]) -> Any:
    """A result dict with `cost_usd` and `tokens` of `calls` (zero when no model was called); a result that
    already has them (a finished background job's) is left as it is."""
    if isinstance(result, dict) and "cost_usd" not in result:
        cost, tokens = totals(calls)
        return {**result, "cost_usd": cost, "tokens": tokens}
    return result


def spent_before_failing(calls: list[CallInfo]) -> str:
    """` (spent $X on N tokens before failing; cadre trace T)` when a failed tool call had paid for
    model attempts, else ''."""
    cost = sum(c.usage_cost_usd for c in calls)
    tokens = sum(c.usage.input_tokens + c.usage.output_tokens for c in calls)
    if not cost and not tokens:
        return ""
    threads = sorted({c.thread_id for c in calls if c.thread_id})
    trace = f"; `cadre trace {threads[0]}` lists the attempts" if threads else ""
    return f" (spent ${cost:.4f} on {tokens:,} tokens before failing{trace})"


def without_echo(message: str, arguments: dict[str, Any]) -> str:
    """`message` with every long argument value it repeats cut short (see `clip`)."""
    values = [v for a in arguments.values() for v in (a if isinstance(a, list) else [a]) if isinstance(v, str)]
    for value in sorted(values, key=len, reverse=True):
        if len(value) > 2 * ECHO_LIMIT and value in message:
            message = message.replace(value, clip(value))
    return message


def tool_errors(func: F) -> F:
    """Turn every failure into an `is_error` result with an actionable message, never a traceback; a
    `dict[str, Any]` result always carries `cost_usd` and `tokens`, and an error says what was spent."""

    signature = inspect.signature(func, eval_str=True)
    costed = signature.return_annotation == dict[str, Any]  # results of narrower types are left as they are

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with recording() as calls:
            try:
                with telemetry.tool_span(func.__name__):
                    result = await func(*args, **kwargs)
                    return with_cost(result, calls) if costed else result
            except ToolError:
                raise
            except Exception as exc:
                raise ToolError(_failure_message(func.__name__, exc, kwargs) + spent_before_failing(calls)) from exc

    wrapper.__signature__ = signature  # type: ignore[attr-defined]  # MCPServer reads the tool's real parameters
    return wrapper  # type: ignore[return-value]  # same call signature as `func`


def _failure_message(tool: str, exc: Exception, arguments: dict[str, Any]) -> str:
    """What the host is told: a `CadreError`'s message or a refused input, long arguments clipped; any
    other exception is a bug, logged with its traceback and reported as one."""
    failure = single_failure(exc)
    message: str | None
    if isinstance(failure, CadreError):
        message = str(failure)
    elif (message := input_failure(failure)) is not None:
        log.info("tool refused its input", tool=tool, error=message)
    else:
        log.exception("tool failed", tool=tool)
        raise ToolError(
            f"internal error ({type(exc).__name__}: {clip(str(exc), 200)}). This is a Cadre bug; "
            "the server log on stderr has the details."
        ) from exc
    return without_echo(message, arguments)
