"""The server kit: builds a role's `MCPServer` and the runtime its tools share.

Everything heavy (config, router, ledger, threads, provider SDKs) opens on first
use, so a host's spawn-to-tools/list stays as fast as a bare server.
"""

from __future__ import annotations

import functools
import inspect
import time
import warnings
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
import mcp_types
import structlog
from mcp.server.mcpserver import Context, ListRoots, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import ValidationError

from cadre_core import telemetry
from cadre_core.errors import (
    ECHO_LIMIT,
    CadreError,
    NoHostSamplingError,
    SamplingUnavailableError,
    clip,
    input_failure,
    single_failure,
)
from cadre_core.models.base import Message, ModelRequest, ModelResponse
from cadre_core.models.sampling import current_sampler, from_sample_result, to_sample_args
from cadre_core.results import with_cost
from cadre_core.workspace import HOST_ROOT_HINT, ServedWorkspaces, Workspace, roots_from_uris

if TYPE_CHECKING:
    from cadre_core.config import LoadedConfig
    from cadre_core.ledger import Ledger
    from cadre_core.router import Router
    from cadre_core.threads import ThreadStore

log = structlog.get_logger("cadre.kit")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def open_budget(config: Any, ledger: Ledger | None = None) -> Any:
    """The spend store when any cap is configured, else None (no caps, nothing to hold); what a crashed
    process left held is settled on open and recorded in `ledger` (by default the config's ledger)."""
    roles = [r.budget_per_day_usd for r in config.roles.values()]
    caps = [config.budget.per_call_usd, config.budget.per_thread_usd, config.budget.per_day_usd,
            config.budget.per_month_usd, *roles]  # fmt: skip
    if all(c is None for c in caps):
        return None
    from cadre_core.budget import Budget, default_budget_path

    if ledger is None:
        from cadre_core.ledger import Ledger

        ledger = Ledger(config.paths.ledger)
    return Budget(config.paths.budget or default_budget_path(), ledger=ledger)


def request_roots(ctx: Context) -> ListRoots | None:
    """Resolver: ask the host for its roots when it declared the capability."""
    caps = ctx.client_capabilities
    return ListRoots() if caps is not None and caps.roots is not None else None


HostRoots = Annotated[mcp_types.ListRootsResult | None, Resolve(request_roots)]
"""Annotate a tool parameter with this to receive the host's roots (hidden from the schema)."""


class Kit:
    """Shared runtime for one server: lazily opened config, router, ledger and threads."""

    def __init__(
        self,
        role: str,
        server_name: str,
        *,
        root: Path | None = None,
        config: LoadedConfig | None = None,
        router: Router | None = None,
        ledger: Ledger | None = None,
        threads: ThreadStore | None = None,
    ):
        self.role, self.server_name = role, server_name
        self.root = Path(root) if root else None
        self.served: ServedWorkspaces | None = None
        self._config, self._router, self._ledger, self._threads = config, router, ledger, threads

    def serve_workspaces(self, served: ServedWorkspaces) -> None:
        """Serve only these workspaces (HTTP): from now on a client's roots select among them, never add one."""
        self.served = served
        self.root = served.workspaces[0].path

    def use(
        self,
        *,
        config: Any = None,
        ledger: Ledger | None = None,
        router: Router | None = None,
        threads: ThreadStore | None = None,
    ) -> Kit:
        """Give the kit parts of its runtime (evals, tests, embedding); the others still open lazily.

        `config` may be a `CadreConfig` or a `LoadedConfig`."""
        if config is not None:
            from cadre_core.config import CadreConfig, LoadedConfig

            self._config = LoadedConfig(config, {}, []) if isinstance(config, CadreConfig) else config
        self._ledger = ledger if ledger is not None else self._ledger
        self._router = router if router is not None else self._router
        self._threads = threads if threads is not None else self._threads
        return self

    @property
    def config(self) -> LoadedConfig:
        if self._config is None:
            from cadre_core.config import load_config

            self._config = load_config(self.root)
        return self._config

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from cadre_core.ledger import Ledger

            self._ledger = Ledger(self.config.config.paths.ledger)
        return self._ledger

    @property
    def router(self) -> Router:
        if self._router is None:
            from cadre_core.router import Router

            self._router = Router(self.config.config, self.ledger, budget=open_budget(self.config.config, self.ledger))
        return self._router

    @property
    def threads(self) -> ThreadStore:
        if self._threads is None:
            from cadre_core.threads import ThreadStore, default_threads_path

            self._threads = ThreadStore(self.config.config.paths.threads or default_threads_path())
        return self._threads

    def keyed(self, role: str | None = None) -> bool:
        """True when some candidate of the role has a provider key (not only the host's model)."""
        return any(
            why is None and not c.model.startswith("sampling:")
            for c, why in self.router.availability(role or self.role)
        )

    def sibling(self) -> Kit:
        """A kit sharing this one's config, ledger, threads and model factory, with its own router
        and SDK clients, for work that runs on another event loop (background jobs)."""
        from cadre_core.router import Router

        router = Router(self.config.config, self.ledger, model_factory=self.router.model_factory,
                        budget=self.router.budget)  # fmt: skip
        kit = Kit(self.role, self.server_name, root=self.root, config=self.config, ledger=self.ledger,
                  threads=self.threads, router=router)  # fmt: skip
        kit.served = self.served
        return kit

    def open_thread(self, thread_id: str | None, tool: str) -> tuple[str, list[Message]]:
        """An existing thread's id and history, or a new thread when `thread_id` is None."""
        if thread_id:
            return thread_id, self.threads.messages(thread_id)
        return self.threads.create(self.role, tool), []

    def save_turn(self, thread_id: str, messages: list[Message], model: str | None = None) -> None:
        """Append this turn's messages so the thread survives a restart."""
        self.threads.append(thread_id, messages, model)

    def workspace(self, host_roots: Any = None) -> Workspace:
        """Where this call's tools may read; every tool asks here.

        Over HTTP (`serve_workspaces`): the served workspace the client's roots select. Over stdio: the
        host's MCP roots when it gave any, else `--root`, else the cwd. Never `/` or the home folder."""
        given = host_roots.roots if host_roots is not None else []
        if self.served is not None:
            return self.served.select([(str(r.uri), r.name) for r in given])
        roots = roots_from_uris([str(r.uri) for r in given])
        if roots or self.root:
            return Workspace(roots or [self.root])
        cwd = Path.cwd()
        return Workspace([cwd], hint=f"this server started in {cwd} and the host sent no roots: {HOST_ROOT_HINT}")

    def new_call(self, tool: str, thread_id: str | None = None) -> Any:
        """One tool call's running totals (cost, tokens, start time) to share across its model calls."""
        from cadre_core.call import CallInfo

        info = CallInfo(server=self.server_name, tool=tool, thread_id=thread_id)
        if (calls := _tool_calls.get()) is not None:
            calls.append(info)
        return info

    async def call_model(
        self,
        ctx: Context | None,
        request: ModelRequest,
        *,
        tool: str,
        thread_id: str | None = None,
        role: str | None = None,
        host_sample: Any = None,
        candidates: list | None = None,
        call: Any = None,
    ) -> ModelResponse:
        """Route `request` for the role, with a progress heartbeat and host sampling available.

        `host_sample` is a `CreateMessageResult` a tool obtained through a `Sample`
        resolver; it answers the `sampling:host` candidate on MCP 2026-07-28.
        """
        from cadre_core.redact import redact_request  # compiles its patterns: not on the cold path

        call = call or self.new_call(tool, thread_id)
        request = redact_request(request)
        token = current_sampler.set(ContextSampler(ctx, host_sample))
        response: ModelResponse | None = None
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                if ctx is not None:
                    tg.start_soon(self._heartbeat, ctx, call)
                try:
                    response = await self.router.model(role or self.role, call, candidates).request(request)
                except Exception as exc:  # re-raised below, outside the task group
                    error = exc
                finally:
                    tg.cancel_scope.cancel()
        finally:
            current_sampler.reset(token)
        if error is not None:
            raise error
        assert response is not None
        return response

    async def _heartbeat(self, ctx: Context, call: Any) -> None:
        interval = self.config.config.server.heartbeat_s
        while True:
            await anyio.sleep(interval)
            elapsed = time.monotonic() - call.started
            message = f"{call.phase}: {call.model or self.role}, {elapsed:.0f}s elapsed"
            try:
                await ctx.report_progress(elapsed, None, message)
            except Exception as exc:  # a closed stream must not kill the call
                log.debug("progress not sent", error=str(exc))


class ContextSampler:
    """Samples the host's model for one tool call."""

    def __init__(self, ctx: Context | None, preresolved: Any = None):
        self.ctx, self.preresolved = ctx, preresolved

    async def sample(self, request: ModelRequest) -> ModelResponse:
        if self.preresolved is not None:
            result, self.preresolved = self.preresolved, None
            return from_sample_result(result, request)
        ctx = self.ctx
        caps = ctx.client_capabilities if ctx is not None else None
        if ctx is None or caps is None or caps.sampling is None:
            raise NoHostSamplingError(provider="sampling", model="host")
        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

        if ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:  # only a `Sample` resolver reaches the host
            raise SamplingUnavailableError(
                "on this MCP version the host's model is asked only when no provider key is set, once per call",
                provider="sampling",
                model="host",
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = await ctx.session.create_message(**to_sample_args(request))
            except Exception as exc:
                raise SamplingUnavailableError(
                    f"the host refused or failed ({exc})", provider="sampling", model="host"
                ) from exc
        return from_sample_result(result, request)


def host_sample_request(
    ctx: Context, kit: Kit, build: Callable[[], ModelRequest | None], role: str | None = None
) -> Any:
    """For a `Sample` resolver: the marker to ask the host's model, or None.

    Returns a `Sample` only on MCP 2026-07-28 and later (older protocols sample from the tool body,
    where a refusal is handled), when no keyed provider can serve the role, the role's route has the
    host (`sampling:host`) and the host declared sampling: the host is asked only as a last resort.
    `build` runs only in that case and may return None (nothing worth asking). Never raises: a failure
    here means no `Sample`, and the tool body reports the real problem."""
    from mcp.server.mcpserver import Sample
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    try:
        caps = ctx.client_capabilities
        if caps is None or caps.sampling is None or ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
            return None
        available = kit.router.availability(role or kit.role)
        if kit.keyed(role) or not any(c.model.startswith("sampling:") and why is None for c, why in available):
            return None
        request = build()
        from cadre_core.redact import redact_request

        return None if request is None else Sample(**to_sample_args(redact_request(request)))
    except Exception as exc:
        log.debug("no host sample", error=repr(exc))
        return None


def without_echo(message: str, arguments: dict[str, Any]) -> str:
    """`message` with every long argument value it repeats cut short (see `clip`)."""
    values = [v for a in arguments.values() for v in (a if isinstance(a, list) else [a]) if isinstance(v, str)]
    for value in sorted(values, key=len, reverse=True):
        if len(value) > 2 * ECHO_LIMIT and value in message:
            message = message.replace(value, clip(value))
    return message


_tool_calls: ContextVar[list[Any] | None] = ContextVar("cadre_tool_calls", default=None)
"""The model-call records (`Kit.new_call`) of the tool call running in this context."""


def spent_before_failing(calls: list[Any]) -> str:
    """` (spent $X on N tokens before failing; cadre trace T)` when a failed tool call had paid for
    model attempts, else ''."""
    cost = sum(c.usage_cost_usd for c in calls)
    tokens = sum(c.usage.input_tokens + c.usage.output_tokens for c in calls)
    if not cost and not tokens:
        return ""
    threads = sorted({c.thread_id for c in calls if c.thread_id})
    trace = f"; `cadre trace {threads[0]}` lists the attempts" if threads else ""
    return f" (spent ${cost:.4f} on {tokens:,} tokens before failing{trace})"


def tool_errors(func: F) -> F:
    """Turn every failure into an `is_error` result with an actionable message, never a traceback; a
    `dict[str, Any]` result always carries `cost_usd` and `tokens`, and an error says what was spent."""

    signature = inspect.signature(func, eval_str=True)
    costed = signature.return_annotation == dict[str, Any]  # results of narrower types are left as they are

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls: list[Any] = []
        token = _tool_calls.set(calls)
        try:
            with telemetry.tool_span(func.__name__):
                result = await func(*args, **kwargs)
                return with_cost(result) if costed else result
        except ToolError:
            raise
        except Exception as exc:
            failure = single_failure(exc)
            if isinstance(failure, CadreError):
                message = str(failure)
            elif (message := input_failure(failure)) is not None:
                log.info("tool refused its input", tool=func.__name__, error=message)
            else:
                log.exception("tool failed", tool=func.__name__)
                raise ToolError(
                    f"internal error ({type(exc).__name__}: {clip(str(exc), 200)}). This is a Cadre bug; "
                    "the server log on stderr has the details."
                ) from exc
            raise ToolError(without_echo(message, kwargs) + spent_before_failing(calls)) from exc
        finally:
            _tool_calls.reset(token)

    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def build_server(
    role: str, name: str, instructions: str, *, kit: Kit | None = None, root: Path | None = None
) -> MCPServer:
    """An `MCPServer` for `role` with its `Kit` at `server.kit`. Register tools with `@server.tool()`
    over functions wrapped in `tool_errors`."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        server_version = version(name)
    except PackageNotFoundError:
        server_version = "0.0.0"
    from cadre_core.logs import ensure_logging

    ensure_logging()  # never structlog's stdout default: stdout is the protocol
    server = _Server(name=name, instructions=instructions, version=server_version, log_level="WARNING")
    server.kit = kit or Kit(role, name, root=root)  # type: ignore[attr-defined]
    return server


class _Server(MCPServer):
    """An `MCPServer` whose argument validation errors are one line naming the argument (no URLs, no echo)."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            from cadre_core.arguments import validation_message

            schema = next((t.input_schema for t in await self.list_tools() if t.name == name), {})
            raise ToolError(f"Error executing tool {name}: {validation_message(cause, schema)}") from cause
