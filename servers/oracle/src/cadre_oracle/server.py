"""The oracle server: thin MCP wrappers over consult, review and second opinions."""

# No `from __future__ import annotations`: the tool signatures name a local resolver, so their
# annotations must be evaluated here, where `ask_host` is in scope.
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import mcp_types
from mcp.server.mcpserver import Context, Resolve, Sample
from pydantic import Field

from cadre_core.accounting import tool_errors
from cadre_core.arguments import LongText, Name, Paths, Question
from cadre_core.errors import CadreError
from cadre_core.host_sampling import host_sample_request
from cadre_core.kit import Kit
from cadre_core.mcp_server import ALWAYS_LOAD, CadreServer, HostRoots, build_server
from cadre_core.models import Effort
from cadre_oracle.about import SERVER

if TYPE_CHECKING:
    from cadre_core.jobs import Jobs
    from cadre_core.models.base import ModelRequest

ROLE = str(SERVER["role"])  # SERVER also holds a dict (other_roles), so its values type as Collection[str]
NAME = str(SERVER["script"])
INSTRUCTIONS = (
    "Oracle: a second opinion and deep reasoning from a strong model of another vendor, reading the files you name. "
    "Use it to review a plan before building it, when debugging is stuck, for a hard design decision, or to review "
    "a change before it lands."
)

Mode = Literal["ask", "plan", "review", "debug", "decide"]


def create_server(root: Path | None = None) -> CadreServer:
    """The oracle server with consult_oracle, oracle_result, review_change and second_opinions."""
    server = build_server(ROLE, NAME, INSTRUCTIONS, root=root)
    kit = server.kit
    jobs = _Jobs(kit)

    def oracle_sample(
        ctx: Context,
        roots: mcp_types.ListRootsResult | None,
        question: str,
        files: list[str] | None,
        context: str | None = None,
        mode: str = "ask",
    ) -> Sample | None:
        """The `Sample` of the oracle's opening request for the host's model, or None (`host_sample_request`)."""
        from cadre_oracle.consult import first_request

        def build() -> "ModelRequest":
            ws = kit.workspace(roots)
            return first_request(ws, question=question, files=files, context=context, mode=mode, effort=None)[0]

        return host_sample_request(ctx, kit, build)

    def ask_host(
        question: str,
        ctx: Context,
        roots: HostRoots = None,
        files: list[str] | None = None,
        context: str | None = None,
        mode: str = "ask",
    ) -> Sample | None:
        """Resolver: the host's model answers only when no provider key can serve the oracle."""
        return oracle_sample(ctx, roots, question, files, context, mode)

    def ask_host_review(
        ctx: Context,
        roots: HostRoots = None,
        diff: str | None = None,
        base: str | None = None,
        focus: str | None = None,
    ) -> Sample | None:
        """Resolver: the host's model reviews the change only when no provider key can serve the review."""
        from cadre_oracle.review import review_request

        return host_sample_request(
            ctx, kit, lambda: review_request(kit.workspace(roots), diff=diff, base=base, focus=focus)[0], "review"
        )

    def ask_host_opinion(
        question: str, ctx: Context, roots: HostRoots = None, files: list[str] | None = None
    ) -> Sample | None:
        """Resolver: with no provider key, the host's model gives the one opinion."""
        return oracle_sample(ctx, roots, question, files)

    @server.tool(meta=ALWAYS_LOAD)
    @tool_errors
    async def consult_oracle(
        question: Annotated[Question, Field(description="What to answer")],
        ctx: Context,
        files: Annotated[Paths | None, Field(description="Paths or globs to read")] = None,
        context: Annotated[LongText | None, Field(description="Extra context from you")] = None,
        mode: Mode = "ask",
        effort: Effort | None = None,
        thread_id: Annotated[Name | None, Field(description="Continue an earlier answer")] = None,
        wait: Annotated[bool, Field(description="false: return a job_id now, poll oracle_result")] = True,
        roots: HostRoots = None,
        host: Annotated[mcp_types.CreateMessageResult | None, Resolve(ask_host)] = None,
    ) -> dict[str, Any]:
        """Second opinion from a strong reasoning model of another vendor: plan, review, debug, decide or ask."""
        from cadre_oracle.consult import consult

        ws = kit.workspace(roots)
        args = {"question": question, "files": files, "context": context, "mode": mode, "effort": effort,
                "thread_id": thread_id}  # fmt: skip
        if not wait:
            if not kit.keyed(ROLE):
                raise CadreError(
                    "wait=false needs a provider key (background jobs cannot use the host's model); "
                    "set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY, or call with wait=true"
                )
            return await jobs.start("consult_oracle", {**args, "roots": [str(r) for r in ws.roots]})
        return await consult(
            kit, ctx, ws, question=question, files=files, context=context, mode=mode, effort=effort,
            thread_id=thread_id, host_sample=host,
        )  # fmt: skip

    @server.tool()
    @tool_errors
    async def oracle_result(job_id: Name) -> dict[str, Any]:
        """Result of a consult_oracle call made with wait=false."""
        return await jobs.result(job_id)

    @server.tool()
    @tool_errors
    async def review_change(
        ctx: Context,
        diff: Annotated[LongText | None, Field(description="Unified diff; default: git diff")] = None,
        base: Annotated[Name | None, Field(description="Git ref to diff against (default HEAD)")] = None,
        focus: Question | None = None,
        roots: HostRoots = None,
        host: Annotated[mcp_types.CreateMessageResult | None, Resolve(ask_host_review)] = None,
    ) -> dict[str, Any]:
        """Code review of a diff or git ref: findings with severity, path and line."""
        from cadre_oracle.review import review_change as review

        return await review(kit, ctx, kit.workspace(roots), diff=diff, base=base, focus=focus, host_sample=host)

    @server.tool()
    @tool_errors
    async def second_opinions(
        question: Question,
        ctx: Context,
        files: Paths | None = None,
        n: Annotated[int, Field(ge=2, le=3)] = 2,
        roots: HostRoots = None,
        host: Annotated[mcp_types.CreateMessageResult | None, Resolve(ask_host_opinion)] = None,
    ) -> dict[str, Any]:
        """Ask 2-3 vendors in parallel; each answer with its cost, plus where they agree and differ."""
        from cadre_oracle.opinions import second_opinions as opinions

        ws = kit.workspace(roots)
        return await opinions(kit, ctx, ws, question=question, files=files, n=n, host_sample=host)

    return server


class _Jobs:
    """Background consults that survive a disconnect and a restart (opened on first use)."""

    def __init__(self, kit: Kit):
        self.kit = kit
        self._jobs: Jobs | None = None

    def _open(self) -> "Jobs":
        if self._jobs is None:
            from cadre_core.jobs import Jobs, JobStore, default_jobs_path
            from cadre_core.storage import storage_url

            config = self.kit.config.config
            target = storage_url(config) or config.paths.jobs or default_jobs_path()  # PostgreSQL: every replica's
            lease = config.server.job_lease_s
            store = JobStore(target, lease_s=lease)
            self._jobs = Jobs(store, {"consult_oracle": self._run_consult}, heartbeat_s=lease / 8)
        return self._jobs

    async def _run_consult(self, args: dict[str, Any]) -> dict[str, Any]:
        """Runs on the jobs' own event loop, so it gets its own router and SDK clients."""
        from cadre_core import telemetry
        from cadre_core.accounting import recording, with_cost
        from cadre_core.workspace import Workspace
        from cadre_oracle.consult import consult

        kit = self.kit.sibling()
        ws = Workspace([Path(r) for r in args.pop("roots")])
        with recording() as calls, telemetry.tool_span("consult_oracle"):  # the job's attempts: a span of their own
            result: dict[str, Any] = with_cost(await consult(kit, None, ws, **args), calls)
            return result

    async def start(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        job_id = await self._open().start(tool, args)
        return {"job_id": job_id, "status": "running", "poll": "call oracle_result with this job_id"}

    async def result(self, job_id: str) -> dict[str, Any]:
        return await self._open().result(job_id)
