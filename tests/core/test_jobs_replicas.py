"""Jobs shared by processes or replicas, on both storage backends: leases, takeover, one taker, users, and
model steps that a takeover replays instead of paying for again."""

import anyio
import pytest

from cadre_core.config import LoadedConfig
from cadre_core.identity import acting_as, current_user
from cadre_core.jobs import Jobs, JobStore, UnknownJobError
from cadre_core.kit import Kit
from cadre_core.ledger import Ledger
from cadre_core.models.base import Message, ModelRequest, ModelResponse, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.owner import owner_alive, process_owner
from cadre_core.router import Router
from tests.core.conftest import ledger_rows, make_config
from tests.core.test_jobs import dead_pid

pytestmark = pytest.mark.anyio
REMOTE = "replica-b.internal:4242:boot:1"
"""An owner on another machine: alive as far as this one can tell, so only its lease can expire."""


async def until_done(jobs: Jobs, job_id: str) -> dict:
    with anyio.fail_after(10):
        while True:
            if (view := await jobs.result(job_id))["status"] != "running":
                return view
            await anyio.sleep(0.01)


def expire_lease(store: JobStore, job_id: str) -> None:
    store.db.execute("UPDATE jobs SET lease_until = ? WHERE id = ?", ("2000-01-01T00:00:00.000+00:00", job_id))


@pytest.fixture
def store(storage):
    s = JobStore(storage.target("jobs"))
    yield s
    s.close()


async def test_a_remote_owner_keeps_its_job_until_its_lease_runs_out(store):
    job_id = store.create("echo", {"q": "x"}, REMOTE)
    ran: list[dict] = []

    async def echo(args: dict) -> dict:
        ran.append(args)
        return {"answer": args["q"]}

    async with Jobs(store, {"echo": echo}) as jobs:
        assert (await jobs.result(job_id))["status"] == "running"
        await anyio.sleep(0.05)
        assert ran == []
        expire_lease(store, job_id)
        assert (await until_done(jobs, job_id))["result"] == {"answer": "x"}
    job = store.get(job_id)
    assert ran == [{"q": "x"}] and job.attempts == 2 and job.owner == jobs.owner


async def test_the_heartbeat_sweep_takes_over_an_expired_job_nobody_polls(store):
    job_id = store.create("echo", {"q": "swept"}, REMOTE)
    expire_lease(store, job_id)
    done = anyio.Event()

    async def echo(args: dict) -> dict:
        done.set()
        return {"answer": args["q"]}

    async with Jobs(store, {"echo": echo}, heartbeat_s=0.02):
        with anyio.fail_after(5):
            await done.wait()
    with anyio.fail_after(5):
        while True:
            if store.get(job_id).status != "running":
                break
            await anyio.sleep(0.01)
    assert store.get(job_id).result == {"answer": "swept"}


async def test_a_container_sharing_this_hostname_counts_as_another_machine(store):
    """Two containers with host networking share a hostname but not their pids (pid_namespaces(7)): a pid
    of the other one, here a dead one of ours, says nothing about its owner, so only its lease counts."""
    host, pid, boot, start = process_owner(dead_pid()).rsplit(":", 3)
    other_container = f"{host.rsplit('/ns', 1)[0]}/ns1:{pid}:{boot}:{start}"
    assert host != host.rsplit("/ns", 1)[0]  # this process's owner names its pid namespace
    assert not owner_alive(process_owner(int(pid))) and owner_alive(other_container)
    job_id = store.create("echo", {"q": "c"}, other_container)

    async def echo(args: dict) -> dict:
        return {"answer": args["q"]}

    async with Jobs(store, {"echo": echo}) as jobs:
        assert (await jobs.result(job_id))["status"] == "running"
        expire_lease(store, job_id)
        assert (await until_done(jobs, job_id))["result"] == {"answer": "c"}


def test_only_one_of_two_racing_takers_wins(store):
    job_id = store.create("echo", {}, REMOTE)
    seen = store.get(job_id)
    assert store.claim(seen, "replica-a:1:b:1") is True
    assert store.claim(seen, "replica-c:1:b:1") is False  # read the same row, lost the race
    assert store.get(job_id).owner == "replica-a:1:b:1"
    assert store.finish(job_id, "done", result={}, owner=REMOTE) is False  # the old owner cannot finish it


async def test_a_user_sees_only_their_own_jobs_and_a_job_runs_as_its_user(store):
    seen: list[str | None] = []

    async def whoami(args: dict) -> dict:
        seen.append(current_user())
        return {}

    async with Jobs(store, {"whoami": whoami}) as jobs:
        with acting_as("alice"):
            job_id = await jobs.start("whoami", {})
            await until_done(jobs, job_id)
        with acting_as("bob"), pytest.raises(UnknownJobError, match="unknown job_id"):
            await jobs.result(job_id)
        assert (await jobs.result(job_id))["status"] == "done"  # no user: one person sees every job
    assert store.get(job_id).user == "alice"
    taken = store.create("whoami", {}, REMOTE, user="carol")  # a job carol started on a replica that died
    expire_lease(store, taken)
    async with Jobs(store, {"whoami": whoami}) as jobs:
        with acting_as("carol"):
            await until_done(jobs, taken)
    assert seen == ["alice", "carol"]


def step_kit(storage, model) -> tuple[Kit, Ledger]:
    config = make_config(oracle=["openai:gpt-6.1-sol"])
    ledger = Ledger(storage.target("ledger"))
    router = Router(config, ledger, model_factory=lambda cand, cfg: model)
    return Kit("oracle", "cadre-test", config=LoadedConfig(config, {}, []), router=router, ledger=ledger), ledger


async def test_a_takeover_replays_the_step_already_paid_for(storage, store, keys):
    """Run 1 pays for step 1 and dies in step 2; run 2 (another owner) replays step 1 and calls only step 2."""
    sent: list[str] = []
    blocked = anyio.Event()

    async def answer(request: ModelRequest, model) -> ModelResponse:
        sent.append(request.messages[-1].text)
        if request.messages[-1].text == "step 2" and len(sent) == 2:
            blocked.set()
            await anyio.sleep_forever()  # the first run dies here
        return ModelResponse(text=f"answer to {request.messages[-1].text}",
                             usage=Usage(input_tokens=1000, output_tokens=100))  # fmt: skip

    kit, ledger = step_kit(storage, FunctionModel(answer))

    async def two_steps(args: dict) -> dict:
        from cadre_core.accounting import recording, with_cost

        with recording() as calls:
            first = await kit.call_model(None, ModelRequest([Message.user("step 1")]), tool="t")
            second = await kit.call_model(None, ModelRequest([Message.user("step 2")]), tool="t")
            return with_cost({"answers": [first.text, second.text]}, calls)

    async with Jobs(store, {"two": two_steps}) as jobs:
        job_id = await jobs.start("two", {})
        with anyio.fail_after(5):
            await blocked.wait()
    # the first owner is gone (its row released, as a crash would leave it stale); a new run takes over
    async with Jobs(store, {"two": two_steps}) as jobs:
        view = await until_done(jobs, job_id)
    assert view["status"] == "done", view
    assert view["result"]["answers"] == ["answer to step 1", "answer to step 2"]
    assert sent == ["step 1", "step 2", "step 2"]  # step 1 was sent once, across both runs
    paid = [r for r in ledger_rows(ledger) if r["outcome"] == "ok"]
    assert len(paid) == 2  # step 1 in run 1, step 2 in run 2; the replay adds no row
    assert view["result"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in paid))  # what the job cost
    ledger.close()


async def test_a_changed_request_is_not_replayed(storage, store, keys):
    question = {"text": "v1"}
    sent: list[str] = []

    async def answer(request: ModelRequest, model) -> ModelResponse:
        sent.append(request.messages[-1].text)
        return ModelResponse(text="ok", usage=Usage(input_tokens=10, output_tokens=1))

    kit, ledger = step_kit(storage, FunctionModel(answer))

    async def one_step(args: dict) -> dict:
        await kit.call_model(None, ModelRequest([Message.user(question["text"])]), tool="t")
        return {}

    async with Jobs(store, {"one": one_step}) as jobs:
        job_id = await jobs.start("one", {})
        await until_done(jobs, job_id)
    store.db.execute("UPDATE jobs SET status = 'running', owner = '' WHERE id = ?", (job_id,))
    question["text"] = "v2"  # the file it reads changed before the re-run
    async with Jobs(store, {"one": one_step}) as jobs:
        await until_done(jobs, job_id)
    assert sent == ["v1", "v2"]
    ledger.close()
