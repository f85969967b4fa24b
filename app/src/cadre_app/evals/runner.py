"""Run a suite against each candidate model of a role, through the role's real server.

Each task's files are written into its own temporary workspace. Each run (candidate x task x repeat)
builds the role's server with `create_server(root=workspace)`, gives its kit a config whose role route is
exactly that one candidate, and calls the tool through the in-memory MCP client, as a host would. Every
attempt lands in a ledger file dedicated to the run; costs and off-the-rails spend are read back from it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

from cadre_app.evals.checkers import Output, check
from cadre_app.evals.judge import JUDGE_TOOL, Judge
from cadre_app.evals.roles import RoleTarget, target_for
from cadre_app.evals.stats import ModelStats, summarize
from cadre_app.evals.suite import JudgeCheck, Suite, Task
from cadre_core.config import ROLES, CadreConfig, Candidate, RoleConfig, RoleName, is_role
from cadre_core.errors import EvalError
from cadre_core.models.refs import is_host, model_key


@dataclass
class TaskResult:
    """One run of one task by one model."""

    model: str
    task: str
    repeat: int
    passed: bool
    reason: str
    latency_s: float
    cost_usd: float
    off_rails_cost_usd: float
    error: str | None = None
    answer: str = ""
    ungraded: bool = False
    """The judge could not grade the answer; the run is left out of the score (see `reason`)."""


@dataclass
class EvalReport:
    role: str
    suite: str
    suite_path: str
    tasks: int
    repeat: int
    ledger: str
    models: list[ModelStats]
    results: list[TaskResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Things a reader of the table must know, e.g. why some runs are ungraded."""

    def stats(self, model: str) -> ModelStats | None:
        """The stats of `model`, however its provider is spelled (`gemini:x` is `google:x`)."""
        return next((m for m in self.models if model_key(m.model) == model_key(model)), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "suite": self.suite,
            "suite_path": self.suite_path,
            "tasks": self.tasks,
            "repeat": self.repeat,
            "ledger": self.ledger,
            "models": [m.as_dict() for m in self.models],
            "results": [asdict(r) for r in self.results],
            "notes": self.notes,
        }


class _Tap:
    """The run's ledger for one task run: forwards every row and keeps this run's own."""

    def __init__(self, ledger: Any):
        self.ledger = ledger
        self.rows: list[Any] = []

    def record(self, row: Any) -> None:
        self.rows.append(row)
        self.ledger.record(row)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def candidate_for(config: CadreConfig, role: str, ref: str) -> Candidate:
    """The role's own settings for `ref` when it is already a candidate (any provider alias), else a plain one."""
    role_cfg = config.role_config(role)
    for cand in role_cfg.candidates if role_cfg else []:
        if model_key(cand.model) == model_key(ref):
            return cand
    try:
        return Candidate(model=ref)
    except ValueError as exc:
        raise EvalError(
            f"'{ref}' is not a model reference ({exc}); write provider:model, e.g. openai:gpt-5.2"
        ) from None


def route_config(config: CadreConfig, role: str, candidate: Candidate, ledger: Path, scratch: Path) -> CadreConfig:
    """`config` with the role's route reduced to `candidate`, and threads and jobs kept in `scratch`."""
    cfg = config.model_copy(deep=True)
    base = cfg.role_config(role) or RoleConfig()
    cfg.roles[_role_name(role)] = base.model_copy(update={"candidates": [candidate]})
    cfg.paths = cfg.paths.model_copy(
        update={"ledger": ledger, "threads": scratch / "threads.sqlite", "jobs": scratch / "jobs.sqlite"}
    )
    return cfg


def _role_name(role: str) -> RoleName:
    if not is_role(role):
        raise EvalError(f"unknown role '{role}'; evaluate one of {', '.join(ROLES)}")
    return role


def _unusable(config: CadreConfig, role: str, candidate: Candidate) -> str | None:
    from cadre_core.router import Router

    if is_host(candidate.model):
        return "the MCP host's model cannot be evaluated outside a host; pick a provider model"
    cfg = config.model_copy(deep=True)
    cfg.roles[_role_name(role)] = RoleConfig(candidates=[candidate])
    return Router(cfg, None).availability(role)[0][1]


def write_workspace(root: Path, task: Task) -> Path:
    """A fresh folder holding the task's files."""
    folder = root / "ws" / task.id
    folder.mkdir(parents=True)
    for name, text in task.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


async def _require_tool(target: RoleTarget, root: Path) -> None:
    from mcp import Client

    async with Client(target.create_server(root)) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    if target.tool not in names:
        raise EvalError(
            f"the {target.role} server has no '{target.tool}' tool in this install "
            f"(it has: {', '.join(names) or 'none'}); "
            f"update {target.package} to a version with '{target.tool}' before evaluating '{target.role}'"
        )


def _row_key(row: dict[str, Any]) -> str:
    return f"{row['provider']}:{row['model']}"


async def run_eval(
    role: str,
    models: list[str],
    suite: Suite,
    *,
    config: CadreConfig,
    ledger_path: Path,
    repeat: int = 1,
    concurrency: int = 4,
    timeout_s: float = 900.0,
    model_factory: Callable[..., Any] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
) -> EvalReport:
    """Run every task `repeat` times for each model; the report has per-model stats and every result."""
    target = target_for(role)
    if not models:
        raise EvalError("no models to evaluate; pass --models provider:model,provider:model")
    keys = [model_key(m) for m in models]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        spelled = " and ".join(dict.fromkeys(m for m in models if model_key(m) == twice))
        raise EvalError(f"a model is listed twice in --models ({spelled} are both {twice}); list each once")
    if repeat < 1 or concurrency < 1:
        raise EvalError("--repeat and --concurrency must be 1 or more")
    if suite.role and suite.role != role:
        raise EvalError(f"suite {suite.path} is for role '{suite.role}', not '{role}'; pass a {role} suite")
    ledger_path = Path(ledger_path)
    if ledger_path.exists():
        raise EvalError(f"ledger {ledger_path} already exists; each eval run needs a new ledger file")
    candidates = [candidate_for(config, role, m) for m in models]
    judges = {c.model for t in suite.tasks for c in t.check if isinstance(c, JudgeCheck)}
    for cand in [*candidates, *(Candidate(model=j) for j in sorted(judges))]:
        if why := _unusable(config, role, cand):
            raise EvalError(f"cannot call {cand.model}: {why}")

    from cadre_core.budget import open_budget
    from cadre_core.ledger import Ledger
    from cadre_core.router import Router
    from cadre_core.threads import ThreadStore

    with tempfile.TemporaryDirectory(prefix=f"cadre-eval-{role}-") as tmp:
        scratch = Path(tmp)
        workspaces = {task.id: write_workspace(scratch, task) for task in suite.tasks}
        await _require_tool(target, scratch)
        ledger_path.parent.mkdir(parents=True, exist_ok=True)
        ledger = Ledger(ledger_path)
        threads = ThreadStore(scratch / "threads.sqlite")
        budget = open_budget(config)
        configs = {c.model: route_config(config, role, c, ledger_path, scratch) for c in candidates}
        judge_router = Router(config, ledger, model_factory=model_factory, budget=budget)
        judge = Judge(judge_router)  # role "judge": never charged to the evaluated role's budget
        limiter = anyio.CapacityLimiter(concurrency)
        results: list[TaskResult] = []

        async def run_one(cand: Candidate, task: Task, number: int) -> None:
            async with limiter:
                result = await _run_task(target, cand, task, number, workspaces[task.id], configs[cand.model],
                                         ledger, threads, budget, model_factory, judge, timeout_s)  # fmt: skip
            results.append(result)
            if on_result is not None:
                on_result(result)

        try:
            async with anyio.create_task_group() as tg:
                for number in range(1, repeat + 1):
                    for task in suite.tasks:
                        for cand in candidates:
                            tg.start_soon(run_one, cand, task, number)
        finally:
            await judge_router.aclose()
            ledger.flush(30.0)
            store = ledger.store
            rows = store.rows(limit=10**9) if store is not None else [asdict(r) for r in ledger.unwritten]
            ledger.close()
            threads.close()

    model_index = {c.model: i for i, c in enumerate(candidates)}
    task_index = {t.id: i for i, t in enumerate(suite.tasks)}
    results.sort(key=lambda r: (model_index[r.model], task_index[r.task], r.repeat))
    stats = []
    for cand in candidates:
        own = [r for r in rows if _row_key(r) == model_key(cand.model) and r["tool"] != JUDGE_TOOL]
        stats.append(summarize(cand.model, [r for r in results if r.model == cand.model], own))
    notes = ungraded_notes(results)
    return EvalReport(role, suite.name, str(suite.path), len(suite.tasks), repeat, str(ledger_path), stats, results,
                      notes)  # fmt: skip


def ungraded_notes(results: list[TaskResult]) -> list[str]:
    """One note per model with ungraded runs: how many, left out of the score, and the first reason."""
    notes = []
    for model in dict.fromkeys(r.model for r in results):
        skipped = [r for r in results if r.model == model and r.ungraded]
        if skipped:
            notes.append(f"{model}: {len(skipped)} run(s) ungraded and left out of its score and CI, "
                         f"because the judge could not grade them ({' '.join(skipped[0].reason.split())})")  # fmt: skip
    return notes


async def _run_task(
    target: RoleTarget,
    cand: Candidate,
    task: Task,
    number: int,
    workspace: Path,
    config: CadreConfig,
    ledger: Any,
    threads: Any,
    budget: Any,
    model_factory: Callable[..., Any] | None,
    judge: Judge,
    timeout_s: float,
) -> TaskResult:
    from mcp import Client

    from cadre_core.router import Router

    server = target.create_server(workspace)
    tap = _Tap(ledger)
    router = Router(config, tap, model_factory=model_factory, budget=budget)  # type: ignore[arg-type]  # a Ledger proxy
    server.kit.use(config=config, ledger=tap, threads=threads, router=router)
    result: dict[str, Any] | None = None
    error: str | None = None
    started = time.perf_counter()
    try:
        with anyio.fail_after(timeout_s):
            async with Client(server) as client:
                started = time.perf_counter()
                called = await client.call_tool(target.tool, target.arguments(task))
        latency = time.perf_counter() - started
        if called.is_error:
            error = " ".join(getattr(c, "text", "") for c in called.content).strip() or "the tool failed"
        else:
            result = called.structured_content or {}
    except TimeoutError:
        latency = time.perf_counter() - started
        error = f"no result within {timeout_s:g}s (--timeout)"
    finally:
        await router.aclose()
    text = target.text(result) if result is not None else ""
    verdict = await check(Output(task, text, result, error, cand.model), judge)
    cost = sum((r.cost_usd or 0.0 for r in tap.rows), 0.0)
    off = sum((r.cost_usd or 0.0 for r in tap.rows if r.outcome == "off_rails"), 0.0)
    return TaskResult(cand.model, task.id, number, verdict.passed, verdict.reason, latency, cost, off, error,
                      text[:2000], verdict.ungraded)  # fmt: skip
