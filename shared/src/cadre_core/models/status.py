"""Map an HTTP failure to Cadre's error classes, the same way for every provider."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC
from typing import Any

from cadre_core import errors

_CONTEXT_HINTS = (
    "context length",
    "context window",
    "context limit",  # Anthropic: "input length and `max_tokens` exceed context limit"
    "too many tokens",
    "prompt is too long",
    "maximum context",
    "input token count",  # Gemini: "The input token count (N) exceeds the maximum number of tokens allowed"
)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    if (ms := _number(headers.get("retry-after-ms"))) is not None:
        return ms / 1000
    value = headers.get("retry-after")
    if not value:
        return None
    if (seconds := _number(value)) is not None:
        return seconds
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # a malformed header must not hide the real error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return max(0.0, parsed.timestamp() - time.time())


def _number(value: str | None) -> float | None:
    """A finite, non-negative number of seconds from a header value, else None."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(0.0, number) if math.isfinite(number) else None


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    model: str,
    env_var: str = "",
    headers: Mapping[str, str] | None = None,
) -> errors.ModelError:
    """The Cadre error for an HTTP status from a provider."""
    kw: errors.ModelStatus = {"provider": provider, "model": model, "status_code": status}
    text = f"HTTP {status}: {message}".strip()
    if status in (401, 403) or "api key not valid" in message.lower() or "api_key_invalid" in message.lower():
        return errors.AuthError(text, env_var=env_var, **kw)
    if status == 429:
        return errors.RateLimitError(text, retry_after=retry_after_seconds(headers), **kw)
    if status in (503, 529):
        return errors.OverloadedError(text, retry_after=retry_after_seconds(headers), **kw)
    if status in (408, 504):
        return errors.ModelTimeoutError(text, **kw)
    if status >= 500:
        return errors.ServerError(text, retry_after=retry_after_seconds(headers), **kw)
    if status == 404:
        return errors.ModelNotFoundError(f"{text}. The model name may be stale; update the route in cadre.toml.", **kw)
    if status == 413 or any(h in message.lower() for h in _CONTEXT_HINTS):
        return errors.ContextWindowError(text, **kw)
    return errors.BadRequestError(text, **kw)


def connection_failed(cause: BaseException, error: Any, *, provider: str, model: str) -> errors.ConnectionFailedError:
    """'cannot connect to <url>: <cause>', with the URL of `error`'s request (no query, no credentials)."""
    url = _plain_url(error)
    where = f" to {url}" if url else ""
    return errors.ConnectionFailedError(f"cannot connect{where}: {cause}", provider=provider, model=model)


def _plain_url(error: Any) -> str:
    try:
        url = error.request.url
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}{url.path}"
    except (AttributeError, RuntimeError):  # no request, or an httpx error raised without one
        return ""


def bad_response(message: str, *, provider: str, model: str) -> errors.BadResponseError:
    return errors.BadResponseError(message, provider=provider, model=model)


@contextmanager
def sdk_errors(sdk: Any, model: Any) -> Iterator[None]:
    """Re-raise an Anthropic- or OpenAI-SDK exception from the block as a Cadre error."""
    try:
        yield
    except Exception as exc:
        mapped = map_sdk_error(exc, sdk, provider=model.provider, model=model.model_name, env_var=model.key_env)
        if mapped is None:
            raise
        raise mapped from exc


def map_sdk_error(exc: Exception, sdk: Any, *, provider: str, model: str, env_var: str) -> errors.ModelError | None:
    """Map an Anthropic- or OpenAI-SDK exception (same Stainless shape) to ours, else None."""
    if isinstance(exc, sdk.APITimeoutError):
        return errors.ModelTimeoutError("request timed out", provider=provider, model=model)
    if isinstance(exc, sdk.APIConnectionError):
        return connection_failed(exc.__cause__ or exc, exc, provider=provider, model=model)
    if isinstance(exc, sdk.APIStatusError):
        return error_for_status(
            exc.status_code,
            _body_message(exc),
            provider=provider,
            model=model,
            env_var=env_var,
            headers=exc.response.headers,
        )
    if isinstance(exc, sdk.APIResponseValidationError | ValueError | RecursionError):  # JSON nested too deep
        return bad_response(f"malformed response: {exc}", provider=provider, model=model)
    return None


def _body_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(message, str):
            return message
    if isinstance(body, str) and body.strip():  # LM Studio: {"error": "'response_format.type' must be ..."}
        return body
    return str(getattr(exc, "message", "") or exc)
