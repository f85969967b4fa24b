"""Persistent background jobs, so a `wait=false` tool call survives a disconnect and a restart.

Lifetime model
--------------
A job body runs as a task in a task group that the `Jobs` object owns, never in
the tool call that started it: when that call returns, is cancelled, or its
client goes away, the job keeps running. The owner is, in order of preference:

* `async with jobs:` (or `await jobs.run_forever()`) entered once for the
  server's lifetime, e.g. in its lifespan. Job bodies then share the server's
  event loop, so they may use the same HTTP clients as tool calls.
* Otherwise, on the first job, a daemon thread named `cadre-jobs` with its own
  event loop. This keeps `start()` and `result()` working anywhere (scripts,
  tests, a server that forgot the lifespan); `close()` stops it.

A job body runs in the owner's context, not the request's: it gets no MCP
`Context`, so it cannot report progress or sample the host.

Across processes and replicas
-----------------------------
The jobs table lives in the `cadre_core.storage` database, so with PostgreSQL any replica can poll any
job. The process running a job holds a lease on its row (`lease_until`), renewed by a heartbeat every
`heartbeat_s`. When the owner exits, running jobs are cancelled and their rows released. Any process that
is asked for a running job whose owner is gone, or that finds one on its heartbeat's sweep, takes it over
(a conditional UPDATE, so one taker wins) and re-runs it: gone means released, a lease run out, or, on this
host, a dead pid or another boot. A job is run at most `max_attempts` times, and a re-run replays the model
steps an earlier run already paid for (`cadre_core.steps`). A signed-in user (`cadre_core.identity`) sees
only their own jobs, and a job runs as the user who started it, wherever it runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel
import structlog

from cadre_core.errors import CadreError, clip, input_failure, single_failure
from cadre_core.identity import acting_as, current_user
from cadre_core.logs import ensure_logging
from cadre_core.owner import owner_alive, process_owner
from cadre_core.steps import StepLog, recording_steps
from cadre_core.storage import open_database
from cadre_core.storage.migrations import AddColumns, Migrations

log = structlog.get_logger("cadre.jobs")

Status = Literal["running", "done", "error", "cancelled"]
Runner = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

MIGRATIONS = Migrations(
    "jobs",
    (
        """
        CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY, tool TEXT NOT NULL, args TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'done', 'error', 'cancelled')),
            result TEXT, error TEXT, owner TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL, updated TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX IF NOT EXISTS jobs_status_updated ON jobs (status, updated)
        """,
        # who started the job, and until when its owner holds it (a file from before leases has neither)
        AddColumns("jobs", {"user_name": "TEXT", "lease_until": "TEXT"}),
        """
        CREATE TABLE job_steps (
            job_id TEXT NOT NULL, step TEXT NOT NULL, response TEXT NOT NULL, created TEXT NOT NULL,
            PRIMARY KEY (job_id, step)
        )
        """,
    ),
    table="jobs",
)
KEEP_DAYS = 7
MAX_ATTEMPTS = 3
LEASE_S = 120.0
"""How long a job's owner holds it without a heartbeat before another process or replica may take it over."""
HEARTBEAT_S = 15.0


class UnknownJobError(CadreError):
    """No job has this id (for this user)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


_live: set[str] = set()
"""Ids of jobs running in this process, under any `Jobs` instance."""
_live_lock = threading.Lock()


def _is_live(job_id: str) -> bool:
    with _live_lock:
        return job_id in _live


# -- the store --------------------------------------------------------------------------------------

_FIELDS = "id, tool, args, status, result, error, owner, created, updated, attempts, user_name, lease_until"


@dataclass
class Job:
    """One row of the jobs table."""

    id: str
    tool: str
    args: dict[str, Any]
    status: Status
    result: dict[str, Any] | None
    error: str | None
    owner: str
    created: str
    updated: str
    """The last heartbeat (or change) of the row."""
    attempts: int
    user: str | None = None
    """Who started it (`cadre_core.identity`); None for one person over stdio or a tokenless bind."""
    lease_until: str | None = None
    """Until when `owner` holds the job; None in a row written before leases."""

    def view(self) -> dict[str, Any]:
        """What a poller sees: status, the result or error when finished, and seconds since the start."""
        end = _now() if self.status == "running" else datetime.fromisoformat(self.updated)
        out: dict[str, Any] = {"job_id": self.id, "status": self.status}
        if self.status == "done":
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        out["elapsed_s"] = round(max(0.0, (end - datetime.fromisoformat(self.created)).total_seconds()), 1)
        return out

    def lease_expired(self, now: datetime, lease_s: float) -> bool:
        """Its owner's lease has run out (a row without one: no heartbeat for `lease_s`)."""
        until = self.lease_until or _iso(datetime.fromisoformat(self.updated) + timedelta(seconds=lease_s))
        return datetime.fromisoformat(until) < now


def _job(row: tuple[Any, ...]) -> Job:
    args, result = json.loads(row[2]), json.loads(row[4]) if row[4] is not None else None
    return Job(row[0], row[1], args, row[3], result, row[5], row[6], row[7], row[8], row[9], row[10], row[11])


class JobStore:
    """Jobs in a `cadre_core.storage` database: a SQLite file, or PostgreSQL that replicas share.

    Every change to a running job is one conditional UPDATE, so two processes (or replicas) racing for a job
    cannot both win: `claim` succeeds only against the row as the claimer read it."""

    def __init__(self, target: Path | str, *, lease_s: float = LEASE_S):
        self.path = target
        self.lease_s = lease_s
        self.db = open_database(target, MIGRATIONS)

    def _lease(self, now: datetime) -> str:
        return _iso(now + timedelta(seconds=self.lease_s))

    def create(self, tool: str, args: dict[str, Any], owner: str, *, attempts: int = 1, user: str | None = None) -> str:
        """Record a running job, leased to `owner`, and return its id."""
        job_id = "job_" + secrets.token_hex(8)
        now = _now()
        self.db.execute(
            "INSERT INTO jobs (id, tool, args, status, owner, created, updated, attempts, user_name, lease_until)"
            " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
            (job_id, tool, json.dumps(args), owner, _iso(now), _iso(now), attempts, user, self._lease(now)),
        )
        return job_id

    def get(self, job_id: str) -> Job | None:
        row = self.db.fetchone(f"SELECT {_FIELDS} FROM jobs WHERE id = ?", (job_id,))  # noqa: S608 - constant
        return None if row is None else _job(row)

    def running(self, limit: int = 100) -> list[Job]:
        """Running jobs, oldest heartbeat first (the sweep checks their leases)."""
        sql = f"SELECT {_FIELDS} FROM jobs WHERE status = 'running' ORDER BY updated LIMIT ?"  # noqa: S608 - constant
        rows = self.db.fetchall(sql, (limit,))
        return [_job(r) for r in rows]

    def finish(
        self,
        job_id: str,
        status: Status,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """Move a running job to `status`; with `owner`, only if it still owns the job."""
        result_text = json.dumps(result) if result is not None else None
        sql = "UPDATE jobs SET status = ?, result = ?, error = ?, updated = ? WHERE id = ? AND status = 'running'"
        params: tuple[object, ...] = (status, result_text, error, _iso(_now()), job_id)
        if owner is not None:
            sql, params = sql + " AND owner = ?", (*params, owner)
        return self.db.execute(sql, params) == 1

    def claim(self, job: Job, owner: str) -> bool:
        """Take over a running job as `owner`, with a fresh lease, and count an attempt, unless someone else
        already did (the row no longer has the owner and attempts it was read with)."""
        now = _now()
        return (
            self.db.execute(
                "UPDATE jobs SET owner = ?, attempts = attempts + 1, updated = ?, lease_until = ?"
                " WHERE id = ? AND status = 'running' AND owner = ? AND attempts = ?",
                (owner, _iso(now), self._lease(now), job.id, job.owner, job.attempts),
            )
            == 1
        )

    def release(self, job_id: str, owner: str) -> bool:
        """Leave a running job ownerless, so the next `result()` re-runs it."""
        return (
            self.db.execute(
                "UPDATE jobs SET owner = '' WHERE id = ? AND status = 'running' AND owner = ?", (job_id, owner)
            )
            == 1
        )

    def touch(self, job_ids: list[str], owner: str) -> None:
        """Heartbeat: these running jobs are alive, and `owner`'s lease on them is renewed."""
        now = _now()
        self.db.executemany(
            "UPDATE jobs SET updated = ?, lease_until = ? WHERE id = ? AND status = 'running' AND owner = ?",
            [(_iso(now), self._lease(now), job_id, owner) for job_id in job_ids],
        )

    def prune(self, keep_days: float = KEEP_DAYS) -> int:
        """Delete finished jobs last updated more than `keep_days` ago, and their steps; return how many."""
        cutoff = _iso(_now() - timedelta(days=keep_days))
        with self.db.transaction() as tx:
            tx.execute(
                "DELETE FROM job_steps WHERE job_id IN (SELECT id FROM jobs WHERE status != 'running' AND updated < ?)",
                (cutoff,),
            )
            return tx.execute("DELETE FROM jobs WHERE status != 'running' AND updated < ?", (cutoff,))

    def step(self, job_id: str, step: str) -> dict[str, Any] | None:
        """A model step of the job stored by an earlier run (see `StepLog`), or None."""
        row = self.db.fetchone("SELECT response FROM job_steps WHERE job_id = ? AND step = ?", (job_id, step))
        return None if row is None else dict(json.loads(row[0]))

    def save_step(self, job_id: str, step: str, response: dict[str, Any]) -> None:
        """Keep a model step's response; a step already stored (by a racing run) is left as it is."""
        self.db.execute(
            "INSERT INTO job_steps (job_id, step, response, created) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job_id, step) DO NOTHING",
            (job_id, step, json.dumps(response), _iso(_now())),
        )

    def close(self) -> None:
        self.db.close()


def default_jobs_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("cadre")) / "jobs.sqlite"


# -- the runner -------------------------------------------------------------------------------------


@dataclass
class _Owner:
    tg: anyio.abc.TaskGroup
    token: anyio.lowlevel.EventLoopToken
    thread: int
    context: contextvars.Context


class Jobs:
    """Starts tool bodies as persistent background jobs and reports on them (see the module doc)."""

    def __init__(
        self,
        store: JobStore,
        runners: dict[str, Runner],
        *,
        max_attempts: int = MAX_ATTEMPTS,
        keep_days: float = KEEP_DAYS,
        heartbeat_s: float = HEARTBEAT_S,
    ):
        ensure_logging()
        self.store, self.runners = store, runners
        self.max_attempts, self.keep_days = max_attempts, keep_days
        self.heartbeat_s = heartbeat_s
        self.owner = process_owner()
        self._current: _Owner | None = None
        self._claimed = False
        self._owner_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop: anyio.Event | None = None
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._entries: dict[int, list[contextlib.AbstractAsyncContextManager[object]]] = {}

    # lifetime

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Jobs]:
        """Own the jobs for the duration of the block; a no-op if something already owns them.

        On exit, jobs still running are cancelled and released for a later re-run.
        """
        with self._owner_lock:
            owned, self._claimed = not self._claimed, True
        if not owned:
            yield self
            return
        try:
            async with anyio.create_task_group() as tg:
                with self._owner_lock:
                    self._current = _Owner(
                        tg, anyio.lowlevel.current_token(), threading.get_ident(), contextvars.copy_context()
                    )
                tg.start_soon(self._heartbeat)
                try:
                    yield self
                finally:
                    with self._owner_lock:
                        self._current = None
                    tg.cancel_scope.cancel()
        finally:
            with self._owner_lock:
                self._claimed = False

    async def __aenter__(self) -> Jobs:
        cm = self.running()
        await cm.__aenter__()
        self._entries.setdefault(anyio.get_current_task().id, []).append(cm)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        key = anyio.get_current_task().id
        cm = self._entries[key].pop()
        if not self._entries[key]:
            del self._entries[key]
        return await cm.__aexit__(*exc_info)

    async def run_forever(self) -> None:
        """Own the jobs until cancelled."""
        async with self.running():
            await anyio.sleep_forever()

    def close(self) -> None:
        """Stop the fallback thread, if one was started; its running jobs are released."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
            stop, self._stop = self._stop, None
        if thread is None or stop is None:
            return
        with self._owner_lock:
            current = self._current
        if current is not None:
            with contextlib.suppress(anyio.RunFinishedError):
                anyio.from_thread.run_sync(stop.set, token=current.token)
        thread.join(timeout=10)

    def _owner(self) -> _Owner | None:
        with self._owner_lock:
            return self._current

    def _ensure_owner(self) -> _Owner:
        if (current := self._owner()) is not None:
            return current
        with self._thread_lock:
            if (current := self._owner()) is not None:
                return current
            ready = threading.Event()
            thread = threading.Thread(target=anyio.run, args=(self._own_in_thread, ready), name="cadre-jobs")
            thread.daemon = True
            thread.start()
            ready.wait(timeout=10)
            self._thread = thread
        if (current := self._owner()) is None:
            raise RuntimeError("the cadre-jobs thread did not start")
        return current

    async def _own_in_thread(self, ready: threading.Event) -> None:
        self._stop = anyio.Event()
        async with self.running():
            ready.set()
            if self._current is not None and self._current.thread == threading.get_ident():
                await self._stop.wait()

    def _in_owner(self, owner: _Owner, func: Callable[..., Any], *args: Any) -> Any:
        if threading.get_ident() == owner.thread:
            return func(*args)
        return anyio.from_thread.run_sync(func, *args, token=owner.token)

    def _spawn(self, job_id: str, tool: str, args: dict[str, Any], user: str | None) -> None:
        owner = self._ensure_owner()
        with _live_lock:
            _live.add(job_id)
        try:
            # the owner's context, not the request's: nothing request-scoped leaks into the job but the user
            # it acts for, from its row (the task copies the context when it is started, inside `acting_as`)
            spawn = functools.partial(owner.tg.start_soon, self._run, job_id, tool, args, name=f"cadre job {job_id}")

            def start() -> None:
                with acting_as(user):
                    spawn()

            self._in_owner(owner, lambda: owner.context.copy().run(start))
        except BaseException:
            with _live_lock:
                _live.discard(job_id)
            raise

    async def _heartbeat(self) -> None:
        """Renew the lease on the jobs running here, and take over those whose owner's lease ran out."""
        while True:
            await anyio.sleep(self.heartbeat_s)
            try:
                if self._scopes:
                    await anyio.to_thread.run_sync(self.store.touch, list(self._scopes), self.owner)
                for job in await anyio.to_thread.run_sync(self.store.running):
                    # not this process's own jobs: one being started is in the table before it is live
                    if job.tool in self.runners and job.owner != self.owner and self._orphaned(job):
                        self._resume(job)
            except CadreError as exc:
                log.warning("job heartbeat not saved", error=str(exc))
            except Exception:  # a failing store must never take the owner's task group down
                log.exception("job heartbeat failed; retrying at the next beat")

    async def _run(self, job_id: str, tool: str, args: dict[str, Any]) -> None:
        structlog.contextvars.bind_contextvars(job_id=job_id, job_tool=tool)
        try:
            with anyio.CancelScope() as scope:
                self._scopes[job_id] = scope
                try:
                    with recording_steps(StepLog(self.store, job_id)):
                        result = await self.runners[tool](args)
                    json.dumps(result)
                except Exception as exc:
                    failure = single_failure(exc)
                    message: str | None
                    if isinstance(failure, CadreError):
                        message = str(failure)
                    elif (message := input_failure(failure)) is None:
                        log.exception("job failed")
                        message = (
                            f"internal error ({type(exc).__name__}) while running job {job_id}. This is a Cadre "
                            f"bug; the server log on stderr has the details. Call {tool} again to retry."
                        )
                    self.store.finish(job_id, "error", error=message, owner=self.owner)
                else:
                    self.store.finish(job_id, "done", result=result, owner=self.owner)
        except anyio.get_cancelled_exc_class():
            with contextlib.suppress(CadreError):
                self.store.release(job_id, self.owner)
            raise
        except Exception:  # a failing store must never take the owner's task group down
            log.exception("job outcome not saved; the next poll re-runs it")
        finally:
            self._scopes.pop(job_id, None)
            with _live_lock:
                _live.discard(job_id)

    # the API tools use

    async def start(self, tool: str, args: dict[str, Any]) -> str:
        """Record a job for `runners[tool](args)`, start it in the background, and return its id at once."""
        if tool not in self.runners:
            raise ValueError(f"no runner for tool {tool!r}; known: {sorted(self.runners)}")
        args = json.loads(json.dumps(args))  # the body sees what a re-run after a restart will see
        self.store.prune(self.keep_days)
        user = current_user()
        job_id = self.store.create(tool, args, self.owner, user=user)
        self._spawn(job_id, tool, args, user)
        log.info("job started", job_id=job_id, tool=tool)
        return job_id

    async def result(self, job_id: str) -> dict[str, Any]:
        """`{job_id, status, result?, error?, elapsed_s}`; re-runs a job whose owner is gone."""
        job = self._get(job_id)
        if job.status == "running" and self._orphaned(job):
            self._resume(job)
            job = self._get(job_id)
        return job.view()

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Mark a running job cancelled and stop it if it runs in this process; returns its view."""
        job = self._get(job_id)
        if job.status == "running" and self.store.finish(job_id, "cancelled", error="cancelled by request"):
            log.info("job cancelled", job_id=job_id)
            scope = self._scopes.get(job_id)
            with self._owner_lock:
                owner = self._current
            if scope is not None and owner is not None:
                with contextlib.suppress(anyio.RunFinishedError):
                    self._in_owner(owner, scope.cancel)
        return self._get(job_id).view()

    def _get(self, job_id: str) -> Job:
        """The job, if this user may see it: a signed-in user sees only the jobs they started."""
        job = self.store.get(job_id)
        user = current_user()
        if job is None or (user is not None and job.user != user):
            raise UnknownJobError(
                f"unknown job_id '{clip(job_id)}'. Pass a job_id returned by a call made with wait=false "
                f"(finished jobs are kept {self.keep_days:g} days), or make that call again to start a new job."
            )
        return job

    def _orphaned(self, job: Job) -> bool:
        if job.owner == self.owner:
            return not _is_live(job.id)
        if not job.owner:
            return True
        if job.lease_expired(_now(), self.store.lease_s):
            return True
        return not owner_alive(job.owner)

    def _resume(self, job: Job) -> None:
        if job.attempts >= self.max_attempts:
            message = (
                f"job {job.id} was interrupted {job.attempts} times (the server stopped while it ran) and was "
                f"given up. Call {job.tool} again to start it afresh."
            )
            self.store.finish(job.id, "error", error=message)
            log.warning("job given up", job_id=job.id, attempts=job.attempts)
            return
        if job.tool not in self.runners:
            raise CadreError(
                f"job {job.id} was interrupted and belongs to tool '{job.tool}', which this server does not run; "
                "poll it from the server that started it."
            )
        if self.store.claim(job, self.owner):
            log.info("re-running interrupted job", job_id=job.id, attempt=job.attempts + 1, previous_owner=job.owner)
            self._spawn(job.id, job.tool, job.args, job.user)
