"""Cadre's own errors. Every message says what to change."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

if TYPE_CHECKING:
    from cadre_core.models.base import ModelResponse

ECHO_LIMIT = 60
"""At most this many characters of a caller's input go into an error message."""


def clip(value: object, limit: int = ECHO_LIMIT) -> str:
    """`value` as one line of text for an error message: control characters and lone surrogates escaped,
    cut to `limit` characters with the full length said, so an error never echoes a huge input back."""
    text = value if isinstance(value, str) else repr(value)
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown if len(text) <= limit else f"{shown}… ({len(text):,} characters)"


def single_failure(exc: BaseException) -> BaseException:
    """The exception behind `exc`, also when task groups wrapped it alone."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


_OS_HINTS = {
    errno.ENAMETOOLONG: "a path or file name is too long for this system; pass a shorter path",
    errno.E2BIG: "an argument is too long to pass to a command; pass a shorter value",
    errno.ENOENT: "no such file or folder; pass an existing path",
    errno.ENOTDIR: "a part of the path is not a folder; pass an existing path",
    errno.EISDIR: "that is a folder, not a file; pass a file path",
    errno.ELOOP: "too many levels of symbolic links; pass the real path",
    errno.EACCES: "permission denied; pass a path the server may read",
    errno.EPERM: "operation not permitted; pass a path the server may read",
}


def input_failure(exc: BaseException) -> str | None:
    """A clear message for a failure the caller's input caused (a path too long, a NUL byte, an
    unencodable character, an OS error), or None for a real bug."""
    if isinstance(exc, OSError):
        where = f" ({clip(exc.filename)})" if isinstance(exc.filename, str) else ""
        hint = _OS_HINTS.get(exc.errno or 0) or f"system error: {clip(exc.strerror or str(exc), 200)}"
        return hint + where
    if isinstance(exc, UnicodeError):
        return "an argument holds text that is not valid Unicode (a lone surrogate?); pass plain UTF-8 text"
    if isinstance(exc, ValueError) and "null byte" in str(exc):
        return "an argument contains a NUL byte (\\x00); remove it"
    return None


class CadreError(Exception):
    """Base class: a failure a user can act on; `str()` is the actionable message."""

    retryable: bool = False
    """Retrying the same candidate may succeed."""
    fallback: bool = False
    """Trying the next candidate may succeed."""


class ConfigError(CadreError):
    """A config file or value is invalid."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        where = " ".join(p for p in (source and f"in {source}", key and f"at '{key}'") if p)
        super().__init__(f"Config error{' ' + where if where else ''}: {message}")


class WorkspaceError(CadreError):
    """A path is outside the workspace roots, missing or unreadable."""


class InputLimitError(CadreError):
    """A request over a provider's input limits (request bytes, say): the next candidate may take it."""

    fallback = True


class ModelName(TypedDict):
    """The keyword arguments that say which model an error came from."""

    provider: str
    model: str


class ModelStatus(ModelName):
    """`ModelName` with the HTTP status the provider answered."""

    status_code: int | None


class ModelSource(TypedDict, total=False):
    """The optional keyword arguments of a `ModelError`."""

    provider: str
    model: str
    status_code: int | None
    retry_after: float | None


class ModelError(CadreError):
    """A model request failed; `provider` and `model` say which one."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.retry_after = retry_after
        self.detail = message
        prefix = f"{provider}:{model}" if provider else "model"
        super().__init__(f"{prefix}: {message}")


class MissingKeyError(ModelError):
    """No API key is configured for a provider."""

    fallback = True

    def __init__(self, *, provider: str, env_var: str, model: str = ""):
        self.env_var = env_var
        super().__init__(f"no API key; set {env_var}", provider=provider, model=model)


class AuthError(ModelError):
    """The provider rejected the key (401/403); retrying cannot help."""

    def __init__(self, message: str, *, env_var: str = "", **kw: Unpack[ModelSource]):
        self.env_var = env_var
        hint = f" Check {env_var}." if env_var else ""
        super().__init__(f"authentication failed: {message}.{hint}", **kw)


class RateLimitError(ModelError):
    """429: too many requests or quota."""

    retryable = True
    fallback = True


class OverloadedError(ModelError):
    """529/503: the provider is overloaded."""

    retryable = True
    fallback = True


class ServerError(ModelError):
    """5xx from the provider."""

    retryable = True
    fallback = True


class ModelTimeoutError(ModelError):
    """The request timed out."""

    retryable = True
    fallback = True
    late_response: ModelResponse | None = None
    """A reply that arrived after the time-out and was discarded (the provider may bill it)."""


class ConnectionFailedError(ModelError):
    """The provider could not be reached."""

    retryable = True
    fallback = True


class BadResponseError(ModelError):
    """The provider answered with malformed or empty content."""

    retryable = True
    fallback = True


class ContextWindowError(ModelError):
    """The prompt does not fit the model's context window."""

    fallback = True


class ModelNotFoundError(ModelError):
    """The model name is unknown to the provider (often a stale name)."""

    fallback = True


class BadRequestError(ModelError):
    """The provider rejected the request as invalid (400/422)."""


class ContentFilterError(ModelError):
    """The provider blocked the prompt or the answer."""

    fallback = True


class OutputInvalidError(CadreError):
    """A model's structured output does not match what was asked for."""


class SamplingUnavailableError(ModelError):
    """The host's model did not answer (the host refused, failed, or was already asked)."""

    fallback = True


class NoHostSamplingError(SamplingUnavailableError):
    """The MCP host does not offer sampling, so its model is not available."""

    def __init__(self, message: str = "the host does not offer MCP sampling", **kw: Unpack[ModelSource]):
        super().__init__(message, **kw)


ROLE_WORDS = {"oracle": "the oracle", "review": "review", "librarian": "research", "search": "deep search"}
"""What each role does, in the words a user reads in an error."""


def one_of(names: list[str]) -> str:
    """`A`, `A or B`, `A, B or C`."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def no_model_message(what: str, env_vars: list[str], host_problem: str | None = None) -> str:
    """The one sentence for "no provider has a key and the host's model did not answer".

    `host_problem` is None when the host's model is not in the route, "" when the host does not
    offer sampling, else why the host's model did not answer."""
    message = f"no model available for {what}: set {one_of(env_vars)} (`cadre doctor` shows what was found)"
    if host_problem is not None:
        message += ", or use a host that supports MCP sampling"
        if host_problem:
            message += f" (the host's model did not answer: {host_problem})"
    return message


@dataclass
class Attempt:
    """One try of one candidate, as reported by the router."""

    model: str
    outcome: str
    error: str = ""
    error_class: str = ""
    latency_ms: float = 0.0
    env_var: str = ""


class AllCandidatesFailedError(CadreError):
    """Every candidate of a role failed or was skipped; lists each attempt and why."""

    def __init__(self, role: str, attempts: list[Attempt], hint: str = ""):
        self.role = role
        self.attempts = attempts
        if (sentence := self._no_model(role, attempts)) is not None:
            super().__init__(sentence)
            return
        lines = [f"all candidates for role '{role}' failed:"]
        lines += [f"  - {a.model}: {a.outcome}{': ' + a.error if a.error else ''}" for a in attempts]
        if not attempts:
            lines.append("  (the role has no candidates; add some under [roles." + role + "])")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))

    @staticmethod
    def _no_model(role: str, attempts: list[Attempt]) -> str | None:
        """The one-sentence message when no candidate had a key and the host's model did not answer."""
        from cadre_core.models.refs import is_host  # here: the models package imports this module

        keyless = [a for a in attempts if a.outcome == "no_key" and a.env_var]
        host = [a for a in attempts if is_host(a.model)]
        unavailable = all(a.error_class in ("SamplingUnavailableError", "NoHostSamplingError") for a in host)
        if not keyless or len(keyless) + len(host) != len(attempts) or not unavailable:
            return None
        problem = None if not host else "; ".join(a.error for a in host if a.error_class != "NoHostSamplingError")
        env_vars = list(dict.fromkeys(a.env_var for a in keyless))
        return no_model_message(ROLE_WORDS.get(role, f"role '{role}'"), env_vars, problem)

    @property
    def missing_keys(self) -> list[str]:
        """Env vars that would make a skipped candidate usable."""
        return [a.env_var for a in self.attempts if a.outcome == "no_key" and a.env_var]


class EvalError(CadreError):
    """`cadre eval` cannot run as asked; the message says what to change."""


class SuiteError(EvalError):
    """An eval suite file is invalid; the message names the file, the task and the field."""
