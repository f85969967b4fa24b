"""The server kit: the runtime one server's tools share, and the way they call a model.

Everything heavy (config, router, ledger, threads, provider SDKs) opens on first use, so a host's
spawn-to-tools/list stays as fast as a bare server. Built into a server by `mcp_server.build_server`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import structlog
from mcp.server.mcpserver import Context

from cadre_core.accounting import record
from cadre_core.call import CallInfo
from cadre_core.host_sampling import ContextSampler
from cadre_core.models.base import Message, ModelRequest, ModelResponse
from cadre_core.models.refs import is_host
from cadre_core.models.sampling import current_sampler
from cadre_core.workspace import HOST_ROOT_HINT, ServedWorkspaces, Workspace, roots_from_uris

if TYPE_CHECKING:
    import mcp_types

    from cadre_core.config import CadreConfig, Candidate, LoadedConfig
    from cadre_core.ledger import Ledger
    from cadre_core.router import Router
    from cadre_core.threads import ThreadStore

log = structlog.get_logger("cadre.kit")


class Kit:
    """Shared runtime for one server: lazily opened config, router, ledger and threads."""

    def __init__(self, role: str, server_name: str, *, root: Path | None = None, config: LoadedConfig | None = None,
                 router: Router | None = None, ledger: Ledger | None = None,
                 threads: ThreadStore | None = None):  # fmt: skip
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
        config: CadreConfig | LoadedConfig | None = None,
        ledger: Ledger | None = None,
        router: Router | None = None,
        threads: ThreadStore | None = None,
    ) -> Kit:
        """Give the kit parts of its runtime (evals, tests, embedding); the others still open lazily."""
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
            from cadre_core.storage import storage_url

            self._ledger = Ledger(self.config.config.paths.ledger, url=storage_url(self.config.config))
        return self._ledger

    @property
    def router(self) -> Router:
        if self._router is None:
            from cadre_core.budget import open_budget
            from cadre_core.router import Router

            self._router = Router(self.config.config, self.ledger, budget=open_budget(self.config.config, self.ledger))
        return self._router

    @property
    def threads(self) -> ThreadStore:
        if self._threads is None:
            from cadre_core.storage import storage_url
            from cadre_core.threads import ThreadStore, default_threads_path

            config = self.config.config
            self._threads = ThreadStore(storage_url(config) or config.paths.threads or default_threads_path())
        return self._threads

    def keyed(self, role: str | None = None) -> bool:
        """True when some candidate of the role has a provider key (not only the host's model)."""
        return any(why is None and not is_host(c.model) for c, why in self.router.availability(role or self.role))

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

    def workspace(self, host_roots: mcp_types.ListRootsResult | None = None) -> Workspace:
        """Where this call's tools may read; every tool asks here.

        Over HTTP (`serve_workspaces`): the served workspace the client's roots select. Over stdio: the
        host's MCP roots when it gave any, else `--root`, else the cwd. Never `/` or the home folder."""
        given = host_roots.roots if host_roots is not None else []
        if self.served is not None:
            return self.served.select([(str(r.uri), r.name) for r in given])
        roots = roots_from_uris([str(r.uri) for r in given])
        if roots:
            return Workspace(roots)
        if self.root:
            return Workspace([self.root])
        cwd = Path.cwd()
        return Workspace([cwd], hint=f"this server started in {cwd} and the host sent no roots: {HOST_ROOT_HINT}")

    def new_call(self, tool: str, thread_id: str | None = None) -> CallInfo:
        """A record of model use (cost, tokens, start time) to share across model calls; it counts toward
        the running tool call's `cost_usd` and `tokens` (`accounting.tool_errors`)."""
        return record(CallInfo(server=self.server_name, tool=tool, thread_id=thread_id))

    async def call_model(
        self,
        ctx: Context | None,
        request: ModelRequest,
        *,
        tool: str,
        thread_id: str | None = None,
        role: str | None = None,
        host_sample: mcp_types.CreateMessageResult | None = None,
        candidates: list[Candidate] | None = None,
        call: CallInfo | None = None,
    ) -> ModelResponse:
        """Route `request`, redacted, for the role, with a progress heartbeat and host sampling available.
        `host_sample`, the host's reply a `Sample` resolver obtained, answers the `sampling:host` candidate."""
        from cadre_core.redact import redact_request  # compiles its patterns: not on the cold path
        from cadre_core.steps import current_steps

        call = call or self.new_call(tool, thread_id)
        request = redact_request(request)
        steps, step = current_steps(), ""
        if steps is not None:  # a background job: a step an earlier run of it paid for is replayed
            step = steps.key(request)
            if (stored := steps.replay(step, call)) is not None:
                return stored
        spent_before = call.usage_cost_usd
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
        if steps is not None:
            steps.keep(step, response, call.usage_cost_usd - spent_before)
        return response

    async def _heartbeat(self, ctx: Context, call: CallInfo) -> None:
        interval = self.config.config.server.heartbeat_s
        while True:
            await anyio.sleep(interval)
            elapsed = time.monotonic() - call.started
            message = f"{call.phase}: {call.model or self.role}, {elapsed:.0f}s elapsed"
            try:
                await ctx.report_progress(elapsed, None, message)
            except Exception as exc:  # a closed stream must not kill the call
                log.debug("progress not sent", error=str(exc))
