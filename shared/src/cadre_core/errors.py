"""Cadre's own errors. Every message says what to change."""

from __future__ import annotations

from dataclasses import dataclass


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

    def __init__(self, message: str, *, env_var: str = "", **kw):
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
    """The MCP host cannot sample, so the host's model is not available."""

    fallback = True


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
        lines = [f"all candidates for role '{role}' failed:"]
        lines += [f"  - {a.model}: {a.outcome}{': ' + a.error if a.error else ''}" for a in attempts]
        if not attempts:
            lines.append("  (the role has no candidates; add some under [roles." + role + "])")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))

    @property
    def missing_keys(self) -> list[str]:
        """Env vars that would make a skipped candidate usable."""
        return [a.env_var for a in self.attempts if a.outcome == "no_key" and a.env_var]


class EvalError(CadreError):
    """`cadre eval` cannot run as asked; the message says what to change."""


class SuiteError(EvalError):
    """An eval suite file is invalid; the message names the file, the task and the field."""
