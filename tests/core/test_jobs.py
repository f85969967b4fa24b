import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from cadre_core.errors import CadreError, ModelError
from cadre_core.jobs import Jobs, JobStore, UnknownJobError, process_owner

pytestmark = pytest.mark.anyio


async def until(jobs: Jobs, job_id: str, status: str = "done") -> dict:
    with anyio.fail_after(5):
        while True:
            view = await jobs.result(job_id)
            if view["status"] == status:
                return view
            await anyio.sleep(0.01)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def row(path, job_id: str) -> dict:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())


def set_updated(path, job_id: str, when: datetime, column: str = "updated") -> None:
    with sqlite3.connect(path) as conn:
        sql = f"UPDATE jobs SET {column} = ? WHERE id = ?"  # noqa: S608 - a column name of the test
        conn.execute(sql, (when.isoformat(timespec="milliseconds"), job_id))


class Recorder:
    """Runners that record their calls and can be held open with an event."""

    def __init__(self):
        self.calls: list[dict] = []
        self.gate = anyio.Event()
        self.cancelled = False

    async def echo(self, args: dict) -> dict:
        self.calls.append(args)
        return {"answer": args["q"].upper()}

    async def held(self, args: dict) -> dict:
        self.calls.append(args)
        try:
            await self.gate.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        return {"answer": "late"}

    def runners(self) -> dict:
        return {"echo": self.echo, "held": self.held}


@pytest.fixture
def store(tmp_path):
    s = JobStore(tmp_path / "jobs.sqlite")
    yield s
    s.close()


async def test_start_poll_done(store):
    rec = Recorder()
    async with Jobs(store, rec.runners()) as jobs:
        job_id = await jobs.start("held", {"q": "x"})
        first = await jobs.result(job_id)
        assert first["status"] == "running" and "result" not in first and first["elapsed_s"] >= 0
        rec.gate.set()
        done = await until(jobs, job_id)
    assert done == {"job_id": job_id, "status": "done", "result": {"answer": "late"}, "elapsed_s": done["elapsed_s"]}
    assert rec.calls == [{"q": "x"}]
    assert row(store.path, job_id)["attempts"] == 1


async def test_cadre_error_message_is_kept(store):
    async def fails(args):
        raise ModelError("quota exhausted; raise the limit", provider="openai", model="gpt")

    async with Jobs(store, {"t": fails}) as jobs:
        view = await until(jobs, await jobs.start("t", {}), "error")
    assert view["error"] == "openai:gpt: quota exhausted; raise the limit"
    assert "result" not in view


async def test_cadre_error_inside_a_task_group_is_unwrapped(store):
    async def fails(args):
        async with anyio.create_task_group() as tg:

            async def boom():
                raise CadreError("set OPENAI_API_KEY")

            tg.start_soon(boom)

    async with Jobs(store, {"t": fails}) as jobs:
        view = await until(jobs, await jobs.start("t", {}), "error")
    assert view["error"] == "set OPENAI_API_KEY"


async def test_a_failure_the_input_caused_is_a_clear_error_not_an_internal_one(store):
    async def fails(args):
        await anyio.Path("x" * 5000).stat()  # ENAMETOOLONG, as a too-long path in a job's files gives

    async with Jobs(store, {"t": fails}) as jobs:
        view = await until(jobs, await jobs.start("t", {}), "error")
    assert view["error"].startswith("a path or file name is too long for this system; pass a shorter path")
    assert "x" * 100 not in view["error"]


async def test_other_exception_gives_a_generic_message_and_logs_the_traceback(store, capsys):
    async def fails(args):
        raise RuntimeError("secret detail 1234")

    async with Jobs(store, {"t": fails}) as jobs:
        job_id = await jobs.start("t", {})
        view = await until(jobs, job_id, "error")
    assert view["error"].startswith("internal error (RuntimeError)")
    assert "Call t again" in view["error"]
    assert "secret detail" not in view["error"] and "Traceback" not in view["error"]
    assert "secret detail" not in (row(store.path, job_id)["error"] or "")
    assert "secret detail 1234" in capsys.readouterr().err


async def test_unserialisable_result_is_an_internal_error(store):
    async def odd(args):
        return {"when": object()}

    async with Jobs(store, {"t": odd}) as jobs:
        view = await until(jobs, await jobs.start("t", {}), "error")
    assert "internal error (TypeError)" in view["error"]


async def test_job_outlives_the_call_that_started_it(store):
    rec = Recorder()
    async with Jobs(store, rec.runners()) as jobs:
        with anyio.CancelScope() as request:
            job_id = await jobs.start("held", {"q": "x"})
            request.cancel()
            await anyio.sleep(10)  # the tool call is cancelled here, as on a client disconnect
        assert request.cancelled_caught

        async with anyio.create_task_group() as tg:  # and a request task group torn down
            box = {}

            async def call():
                box["id"] = await jobs.start("held", {"q": "y"})
                await anyio.sleep_forever()

            tg.start_soon(call)
            await anyio.sleep(0.05)
            tg.cancel_scope.cancel()

        await anyio.sleep(0.05)
        assert (await jobs.result(job_id))["status"] == "running"
        assert not rec.cancelled
        rec.gate.set()
        assert (await until(jobs, job_id))["result"] == {"answer": "late"}
        assert (await until(jobs, box["id"]))["result"] == {"answer": "late"}


async def test_without_an_owner_a_background_thread_runs_jobs(store):
    seen = {}

    async def where(args):
        seen["thread"] = threading.current_thread().name
        return {"ok": True}

    jobs = Jobs(store, {"t": where})
    try:
        view = await until(jobs, await jobs.start("t", {}))
    finally:
        jobs.close()
    assert view["result"] == {"ok": True}
    assert seen["thread"] == "cadre-jobs"


async def test_cancel_reaches_a_job_in_the_background_thread(store):
    stopped = threading.Event()

    async def forever(args):
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    jobs = Jobs(store, {"t": forever})
    try:
        job_id = await jobs.start("t", {})
        await anyio.sleep(0.02)
        assert (await jobs.cancel(job_id))["status"] == "cancelled"
        assert await anyio.to_thread.run_sync(stopped.wait, 5)
    finally:
        jobs.close()


async def test_a_second_owner_is_a_pass_through(store):
    rec = Recorder()
    jobs = Jobs(store, rec.runners())
    async with jobs:
        async with jobs:
            job_id = await jobs.start("held", {"q": "x"})
        await anyio.sleep(0.02)
        assert not rec.cancelled
        rec.gate.set()
        assert (await until(jobs, job_id))["status"] == "done"


async def test_owner_exit_releases_running_jobs_for_a_rerun(store):
    rec = Recorder()
    async with Jobs(store, rec.runners()) as jobs:
        job_id = await jobs.start("held", {"q": "x"})
        await anyio.sleep(0.05)
    assert rec.cancelled
    assert row(store.path, job_id)["owner"] == ""

    rec2 = Recorder()
    rec2.gate.set()
    async with Jobs(store, rec2.runners()) as jobs:
        assert (await jobs.result(job_id))["status"] == "running"
        assert (await until(jobs, job_id))["result"] == {"answer": "late"}
    assert rec2.calls == [{"q": "x"}]
    assert row(store.path, job_id)["attempts"] == 2


async def test_job_of_a_dead_process_is_rerun_on_poll(store):
    job_id = store.create("echo", {"q": "again"}, process_owner(dead_pid()))
    rec = Recorder()
    async with Jobs(store, rec.runners()) as jobs:
        first = await jobs.result(job_id)
        assert first["status"] == "running"
        view = await until(jobs, job_id)
    assert view["result"] == {"answer": "AGAIN"}
    assert rec.calls == [{"q": "again"}]
    stored = row(store.path, job_id)
    assert stored["attempts"] == 2 and stored["owner"] == process_owner()


async def test_job_from_another_boot_is_rerun(store):
    host, pid, _boot, start = process_owner().rsplit(":", 3)
    job_id = store.create("echo", {"q": "b"}, f"{host}:{pid}:another-boot:{start}")
    async with Jobs(store, Recorder().runners()) as jobs:
        assert (await until(jobs, job_id))["result"] == {"answer": "B"}


async def test_live_owner_elsewhere_is_left_alone_until_its_lease_runs_out(store):
    job_id = store.create("echo", {"q": "r"}, "another-host:4242:boot:1")
    rec = Recorder()
    async with Jobs(store, rec.runners()) as jobs:
        set_updated(store.path, job_id, datetime.now(UTC) - timedelta(minutes=10))  # a heartbeat is not a lease
        assert (await jobs.result(job_id))["status"] == "running"
        await anyio.sleep(0.05)
        assert rec.calls == []
        set_updated(store.path, job_id, datetime.now(UTC) - timedelta(seconds=1), "lease_until")
        assert (await until(jobs, job_id))["result"] == {"answer": "R"}
    assert row(store.path, job_id)["attempts"] == 2


async def test_a_row_from_before_leases_expires_with_its_heartbeat(store):
    job_id = store.create("echo", {"q": "old"}, "another-host:4242:boot:1")
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE jobs SET lease_until = NULL WHERE id = ?", (job_id,))
    rec = Recorder()
    async with Jobs(store, rec.runners()) as jobs:
        assert (await jobs.result(job_id))["status"] == "running" and rec.calls == []
        set_updated(store.path, job_id, datetime.now(UTC) - timedelta(seconds=store.lease_s + 1))
        assert (await until(jobs, job_id))["result"] == {"answer": "OLD"}


async def test_heartbeat_keeps_a_running_job_fresh(store):
    rec = Recorder()
    async with Jobs(store, rec.runners(), heartbeat_s=0.02) as jobs:
        job_id = await jobs.start("held", {"q": "x"})
        set_updated(store.path, job_id, datetime.now(UTC) - timedelta(minutes=10))
        set_updated(store.path, job_id, datetime.now(UTC), "lease_until")
        await anyio.sleep(0.1)
        stored = row(store.path, job_id)
        assert datetime.now(UTC) - datetime.fromisoformat(stored["updated"]) < timedelta(seconds=5)
        lease = datetime.fromisoformat(stored["lease_until"]) - datetime.now(UTC)
        assert timedelta(seconds=store.lease_s - 5) < lease <= timedelta(seconds=store.lease_s)
        rec.gate.set()
        await until(jobs, job_id)


async def test_attempts_are_capped(store):
    job_id = store.create("echo", {"q": "x"}, process_owner(dead_pid()), attempts=3)
    rec = Recorder()
    async with Jobs(store, rec.runners()) as jobs:
        view = await jobs.result(job_id)
    assert view["status"] == "error"
    assert "interrupted 3 times" in view["error"] and "Call echo again" in view["error"]
    assert rec.calls == []


async def test_two_restarts_then_give_up(store):
    job_id = store.create("held", {"q": "x"}, process_owner(dead_pid()))
    for attempt in (2, 3):
        rec = Recorder()
        async with Jobs(store, rec.runners()) as jobs:
            assert (await jobs.result(job_id))["status"] == "running"
            await anyio.sleep(0.02)
        assert rec.calls == [{"q": "x"}]
        assert row(store.path, job_id)["attempts"] == attempt
    async with Jobs(store, Recorder().runners()) as jobs:
        assert (await jobs.result(job_id))["status"] == "error"


async def test_unknown_id_says_how_to_get_one(store):
    async with Jobs(store, Recorder().runners()) as jobs:
        with pytest.raises(UnknownJobError, match=r"unknown job_id 'job_nope'.*wait=false"):
            await jobs.result("job_nope")


async def test_unknown_tool_is_refused(store):
    jobs = Jobs(store, {})
    with pytest.raises(ValueError, match="no runner for tool 'x'"):
        await jobs.start("x", {})


async def test_results_persist_across_reopen(tmp_path):
    path = tmp_path / "jobs.sqlite"
    first = JobStore(path)
    async with Jobs(first, Recorder().runners()) as jobs:
        job_id = await jobs.start("echo", {"q": "kept"})
        await until(jobs, job_id)
    first.close()

    reopened = JobStore(path)
    rec = Recorder()
    async with Jobs(reopened, rec.runners()) as jobs:
        view = await jobs.result(job_id)
    reopened.close()
    assert view["status"] == "done" and view["result"] == {"answer": "KEPT"}
    assert rec.calls == []


async def test_cancel_stops_a_running_job(store):
    rec = Recorder()
    async with Jobs(store, rec.runners()) as jobs:
        job_id = await jobs.start("held", {"q": "x"})
        await anyio.sleep(0.02)
        view = await jobs.cancel(job_id)
        assert view["status"] == "cancelled"
        await anyio.sleep(0.02)
        assert rec.cancelled
        assert (await jobs.result(job_id))["status"] == "cancelled"


async def test_old_finished_jobs_are_pruned_on_start(store):
    async with Jobs(store, Recorder().runners()) as jobs:
        old = await jobs.start("echo", {"q": "old"})
        recent = await jobs.start("echo", {"q": "recent"})
        await until(jobs, old)
        await until(jobs, recent)
        stuck = store.create("echo", {"q": "stuck"}, "another-host:1:b:1")
        set_updated(store.path, old, datetime.now(UTC) - timedelta(days=8))
        set_updated(store.path, stuck, datetime.now(UTC) - timedelta(days=8))
        await jobs.start("echo", {"q": "new"})
        with pytest.raises(UnknownJobError):
            await jobs.result(old)
        assert (await jobs.result(recent))["status"] == "done"
    assert row(store.path, stuck)["status"] == "running"


SERVER = textwrap.dedent(
    """
    import sys, anyio
    from cadre_core.jobs import Jobs, JobStore

    async def held(args):
        await anyio.sleep_forever()

    async def main():
        async with Jobs(JobStore(sys.argv[1]), {"held": held}) as jobs:
            print(await jobs.start("held", {"q": "restart"}), flush=True)
            await anyio.sleep_forever()

    anyio.run(main)
    """
)


def start_job_then_kill_server(path) -> tuple[str, int]:
    """Run a server process that starts a job, then kill it mid-job, as a crash or a host restart would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        job_id = proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    return job_id, proc.pid


async def test_polling_works_across_a_killed_server(tmp_path):
    path = tmp_path / "jobs.sqlite"
    job_id, pid = start_job_then_kill_server(path)
    assert job_id.startswith("job_")
    assert row(path, job_id)["owner"].split(":")[1] == str(pid)

    store = JobStore(path)
    rec = Recorder()
    try:
        async with Jobs(store, {"held": rec.echo}) as jobs:
            assert (await jobs.result(job_id))["status"] == "running"
            view = await until(jobs, job_id)
    finally:
        store.close()
    assert view["result"] == {"answer": "RESTART"}
    assert rec.calls == [{"q": "restart"}]
    assert json.loads(row(path, job_id)["args"]) == {"q": "restart"}


async def test_a_job_acts_for_the_user_who_started_it(store):
    from cadre_core.identity import acting_as, current_user

    seen: list[str | None] = []

    async def whoami(args: dict) -> dict:
        seen.append(current_user())
        return {"answer": "ok"}

    async with Jobs(store, {"whoami": whoami}) as jobs:
        with acting_as("alice"):
            alice = await jobs.start("whoami", {})
        with acting_as("bob"):
            bob = await jobs.start("whoami", {})
        await until(jobs, alice)
        await until(jobs, bob)
    assert sorted(seen, key=str) == ["alice", "bob"]
