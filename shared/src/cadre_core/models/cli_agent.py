"""Vendor CLI agents (`codex`, `claude`, `gemini`) run as providers on the user's own login.

Each run is one child process: its own process group, stdin fed the prompt then closed, stdout and stderr
capped, argv passed without a shell. A time-out or cancellation kills the whole group. Read-only is
the default; a provider's `allow_writes = true` is the only way to a write or bypass flag.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from cadre_core.errors import (
    MissingKeyError,
    ModelError,
    ModelName,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
    clip,
)
from cadre_core.models.base import Model, ModelRequest
from cadre_core.structured import schema_instruction

OUTPUT_CAP_BYTES = 8 * 1024 * 1024
"""Most bytes read from a CLI's stdout (or stderr); past it the run is killed and fails."""


class AgentUnavailableError(MissingKeyError):
    """The CLI is not installed or not logged in: skipped like a provider without a key."""

    def __init__(self, message: str, *, provider: str, model: str = ""):
        self.env_var = ""
        ModelError.__init__(self, message, provider=provider, model=model)


@dataclass
class CliRun:
    """What one finished CLI run wrote."""

    returncode: int
    stdout: str
    stderr: str


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid` (the CLI and everything it started); gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run_cli(argv: Sequence[str], prompt: str, *, cap: int = OUTPUT_CAP_BYTES) -> CliRun:
    """Run `argv` in a new session with `prompt` on stdin; the group is killed on any exit path."""
    proc = await anyio.open_process(
        list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    out, err, overflow = bytearray(), bytearray(), []

    async def feed() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await proc.stdin.send(prompt.encode())
        await proc.stdin.aclose()

    async def drain(stream: Any, buf: bytearray) -> None:
        async for chunk in stream:
            buf += chunk
            if len(buf) > cap:
                overflow.append(True)
                kill_group(proc.pid)
                return

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            tg.start_soon(drain, proc.stdout, out)
            tg.start_soon(drain, proc.stderr, err)
        code = await proc.wait()
    finally:
        with anyio.CancelScope(shield=True):
            kill_group(proc.pid)
            await proc.aclose()
    if overflow:
        raise OutputTooLargeError(f"the CLI wrote more than {cap:,} bytes; the run was stopped")
    return CliRun(code, out.decode(errors="replace"), err.decode(errors="replace"))


class OutputTooLargeError(ModelError):
    """The CLI's output passed the cap."""

    fallback = True


def render_prompt(request: ModelRequest) -> str:
    """The request as one prompt: system text, the schema instruction, then the turns in order."""
    parts = [request.system or ""]
    if request.output_schema is not None:
        parts.append(schema_instruction(request.output_schema))
    for m in request.messages:
        label = {"user": "User", "assistant": "Assistant"}.get(m.role, f"Tool {m.tool_name} result")
        parts.append(f"[{label}]\n{m.text}" if len(request.messages) > 1 or m.role != "user" else m.text)
    return "\n\n".join(p for p in parts if p.strip())


class CliAgentModel(Model):
    """A vendor CLI run once per request. Subclasses build the argv and parse the output.

    The agent reads the workspace with its own (sandboxed) tools, so a role's tool loop works: Cadre's tool
    definitions are not passed and the agent never returns tool calls, only its final answer."""

    executable = ""
    install_hint = ""
    login_hint = ""
    login_files: tuple[str, ...] = ()
    """Where the CLI keeps a file login (`~` and `$VARS` expanded); it may use the OS keychain instead."""
    login_env: tuple[str, ...] = ()
    """Env vars the CLI also logs in with (an API key)."""

    def __init__(
        self, model_name: str, *, command: str | None = None, allow_writes: bool = False, timeout_s: float = 900.0
    ):
        super().__init__(model_name)
        self.command, self.allow_writes, self.timeout_s = command or self.executable, allow_writes, timeout_s

    @property
    def model_flag(self) -> str | None:
        """The model to pass, or None for `default` (the CLI's own choice)."""
        return None if self.model_name == "default" else self.model_name

    def resolved_command(self) -> str:
        """The executable's path; `AgentUnavailableError` with the install hint when it is missing."""
        path = shutil.which(self.command)
        if path is None:
            raise AgentUnavailableError(
                f"`{self.command}` is not installed or not on PATH; {self.install_hint}, or set "
                f"[providers.{self.provider}] command",
                provider=self.provider,
                model=self.model_name,
            )
        return path

    async def prepare(self) -> None:
        self.resolved_command()

    @classmethod
    def status(cls, command: str | None = None) -> dict[str, Any]:
        """For `cadre doctor`: the executable's path (None when missing) and how it is logged in, read from
        files and env only (None: no login file found; it may still be in the OS keychain)."""
        env = next((v for v in cls.login_env if os.environ.get(v, "").strip()), None)
        files = [Path(os.path.expandvars(os.path.expanduser(f))) for f in cls.login_files]
        found = next((str(f) for f in files if f.is_file()), None)
        return {"installed": shutil.which(command or cls.executable), "login": found or env, "fix": cls.login_hint,
                "install": cls.install_hint}  # fmt: skip

    def not_logged_in(self, detail: str) -> AgentUnavailableError:
        return AgentUnavailableError(
            f"not logged in ({detail}); {self.login_hint}", provider=self.provider, model=self.model_name
        )

    def note(self, billing: str) -> str:
        """The ledger message of an answer: who bills it, and whether writes were allowed."""
        return f"billing={billing}" + ("; writes allowed" if self.allow_writes else "")

    def failure(self, message: str) -> ModelError:
        """A CLI's error text as the Cadre error that says the fix."""
        low = message.lower()
        kw: ModelName = {"provider": self.provider, "model": self.model_name}
        text = clip(message, 300)
        if any(w in low for w in _LOGIN_WORDS):
            return self.not_logged_in(text)
        if any(w in low for w in _LIMIT_WORDS):
            return RateLimitError(f"{text}; wait for the plan's limit to reset or route to another model", **kw)
        if "model" in low and any(w in low for w in ("not found", "does not exist", "not supported", "unknown")):
            return ModelNotFoundError(f"{text}; check the model name after `{self.provider}:`", **kw)
        return ServerError(text or "the CLI failed without a message", **kw)


_LOGIN_WORDS = ("not logged in", "auth method", "login", "log in", "unauthorized", "401", "authenticat", "api key")
_LIMIT_WORDS = ("rate limit", "rate_limit", "429", "quota", "usage limit", "resource_exhausted", "too many requests")
