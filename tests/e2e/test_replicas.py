"""Two real `cadre up` replicas on one database (a shared SQLite folder, or PostgreSQL) against a loopback fake
OpenAI: a job started on one is fetched on the other, a replica killed mid-job hands its job over without
paying twice for a stored step, a budget holds under concurrency across both, and `cadre cost` sums both."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import anyio
import pytest
from mcp import Client

from cadre_app.testing import free_port, wait_until_healthy
from tests.e2e.loopback import send_json, serving

pytestmark = pytest.mark.anyio
ANSWER = {"answer": "Add the tenant to the cache key.", "key_points": ["tenant"], "risks": [], "next_steps": [],
          "confidence": "high", "citations": []}  # fmt: skip
QUESTION = "Why do tenants see each other's results?"


def responses_body(model: str, output: list[dict], output_tokens: int = 80) -> dict:
    """A completed Responses API body (platform.openai.com/docs/api-reference/responses/object)."""
    return {
        "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": model,
        "error": None, "incomplete_details": None, "output": output,
        "usage": {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 40},
                  "total_tokens": 1200 + output_tokens},
    }  # fmt: skip


class FakeOpenAI(BaseHTTPRequestHandler):
    """Step 1 of a consult asks to read cache.py (a `function_call` item); step 2, which carries the
    `function_call_output`, gets the answer (`read_first = False`: step 1 answers). `hold_step_2` keeps the
    first step 2 waiting (its replica dies)."""

    steps: ClassVar[list[int]] = []
    times: ClassVar[list[float]] = []
    hold_step_2 = False
    holding = threading.Event()
    delay_s = 0.0
    output_tokens = 80
    read_first = True

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        answered = any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in body["input"])
        FakeOpenAI.steps.append(2 if answered else 1)
        FakeOpenAI.times.append(time.monotonic())
        if answered and FakeOpenAI.hold_step_2 and FakeOpenAI.steps.count(2) == 1:
            FakeOpenAI.holding.set()
            time.sleep(60)  # the replica waiting on it is killed meanwhile
            return
        time.sleep(FakeOpenAI.delay_s)
        if answered or not FakeOpenAI.read_first:
            output = [
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": json.dumps(ANSWER), "annotations": []}],
                }
            ]
        else:
            output = [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "read_file",
                       "arguments": json.dumps({"path": "cache.py"}), "status": "completed"}]  # fmt: skip
        send_json(self, responses_body(body["model"], output, FakeOpenAI.output_tokens))

    def log_message(self, *args):
        return


@pytest.fixture
def fake_openai():
    FakeOpenAI.steps, FakeOpenAI.times, FakeOpenAI.hold_step_2, FakeOpenAI.delay_s = [], [], False, 0.0
    FakeOpenAI.output_tokens, FakeOpenAI.read_first = 80, True
    FakeOpenAI.holding = threading.Event()
    with serving(FakeOpenAI) as url:
        yield url


class Replicas:
    """`cadre up --servers oracle` processes sharing one state folder and, for PostgreSQL, one database."""

    def __init__(self, tmp_path, storage, provider_url: str):
        self.tmp = tmp_path
        (tmp_path / "ws").mkdir()
        (tmp_path / "ws" / "cache.py").write_text("def cache_key(query):\n    return query\n")
        (tmp_path / "config" / "cadre").mkdir(parents=True)
        self.env = {
            "PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": provider_url,
            **({"CADRE_STORAGE_URL": storage.url} if storage.url else {}),
        }  # fmt: skip
        self.procs: list[subprocess.Popen] = []

    def config(self, text: str) -> None:
        (self.tmp / "config" / "cadre" / "cadre.toml").write_text(text)

    def start(self, *prefix: str) -> tuple[subprocess.Popen, str]:
        """A replica; `prefix` runs it under another command (a new pid namespace)."""
        port = free_port()
        cmd = [*prefix, sys.executable, "-m", "cadre_app.cli", "up", "--port", str(port), "--servers", "oracle",
               "--grace", "1", "--root", str(self.tmp / "ws")]  # fmt: skip
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        if wait_until_healthy(proc, f"http://127.0.0.1:{port}"):
            return proc, f"http://127.0.0.1:{port}/oracle/mcp"
        raise AssertionError(f"cadre up did not start: {proc.stderr.read() if proc.poll() is not None else ''}")

    def cost(self) -> dict:
        done = subprocess.run([sys.executable, "-m", "cadre_app.cli", "cost", "--json", "--by", "model"],
                              env=self.env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def stop(self) -> None:
        """SIGTERM every replica; one still running after 30 s is killed (none is left behind) and fails the test."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        stuck = []
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stuck.append(proc.args)
                proc.kill()
                proc.wait()
            proc.stderr.close()
        assert not stuck, f"replicas ignored SIGTERM for 30 s: {stuck}"


@pytest.fixture
def replicas(tmp_path, storage, fake_openai):
    group = Replicas(tmp_path, storage, fake_openai)
    yield group
    group.stop()


async def call(url: str, tool: str, args: dict) -> dict:
    async with Client(url) as client:
        result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def poll(url: str, job_id: str) -> dict:
    with anyio.fail_after(60):
        while True:
            view = await call(url, "oracle_result", {"job_id": job_id})
            if view["status"] != "running":
                return view
            await anyio.sleep(0.2)


async def test_a_job_started_on_one_replica_is_fetched_on_the_other(replicas):
    _, a = replicas.start()
    _, b = replicas.start()
    started = await call(a, "consult_oracle", {"question": QUESTION, "files": ["cache.py"], "wait": False})
    view = await poll(b, started["job_id"])
    assert view["status"] == "done", view
    assert view["result"]["answer"] == ANSWER["answer"]
    assert FakeOpenAI.steps == [1, 2]  # run once, by replica A: B only read the row


async def start_then_kill_in_step_2(replicas, *prefix: str) -> tuple[str, str, float]:
    """Replica A (under `prefix`) starts a consult and is killed with SIGKILL while step 2 waits on the model,
    after step 1 was answered, stored and written to the ledger; B's URL, the job id and when A died."""
    FakeOpenAI.hold_step_2 = True
    proc_a, a = replicas.start(*prefix)
    _, b = replicas.start()
    started = await call(a, "consult_oracle", {"question": QUESTION, "files": ["cache.py"], "wait": False})
    assert await anyio.to_thread.run_sync(FakeOpenAI.holding.wait, 30)  # step 1 answered and stored; A in step 2
    # the ledger writes in the background: wait for A's row of step 1, which a kill -9 could otherwise lose
    with anyio.fail_after(30):
        while True:
            if sum(m["ok"] for m in (await anyio.to_thread.run_sync(replicas.cost))["model"]) == 1:
                break
            await anyio.sleep(0.2)
    proc_a.send_signal(signal.SIGKILL)  # with --kill-child, unshare's child dies with it
    proc_a.wait(timeout=10)
    return b, started["job_id"], time.monotonic()


async def test_a_killed_replica_hands_its_job_over_without_paying_twice(replicas):
    b, job_id, _ = await start_then_kill_in_step_2(replicas)
    view = await poll(b, job_id)  # on one machine the dead process is seen: taken over at once
    assert view["status"] == "done", view
    assert view["result"]["answer"] == ANSWER["answer"]
    assert FakeOpenAI.steps == [1, 2, 2]  # B replayed step 1 from the store and called only step 2 again
    models = replicas.cost()["model"]
    assert sum(m["ok"] for m in models) == 2  # the ledger paid step 1 once (A) and step 2 once (B)


async def test_a_budget_holds_across_both_replicas_and_cost_sums_both(replicas):
    cap = 1.0
    replicas.config(f"[budget]\nper_day_usd = {cap}\n")
    FakeOpenAI.delay_s = 0.3  # calls overlap, so reservations race
    # each answer costs about $0.37, near the most a call may cost (what it reserves): two fit under the cap
    FakeOpenAI.output_tokens, FakeOpenAI.read_first = 30_000, False  # one model call per consult
    _, a = replicas.start()
    _, b = replicas.start()
    outcomes: list[str] = []

    async def consult(url: str) -> None:
        async with Client(url) as client:
            result = await client.call_tool("consult_oracle", {"question": QUESTION})
        outcomes.append("refused" if result.is_error and "budget" in result.content[0].text.lower() else
                        "error" if result.is_error else "ok")  # fmt: skip

    async with anyio.create_task_group() as tg:
        for i in range(16):
            tg.start_soon(consult, a if i % 2 else b)
    assert "ok" in outcomes and "refused" in outcomes and "error" not in outcomes, outcomes
    spent = replicas.cost()
    total = sum(m["cost_usd"] for m in spent["model"])
    assert 0 < total <= cap  # with a budget per replica, each would have let two calls through
    assert outcomes.count("ok") >= 1
    assert sum(m["ok"] for m in spent["model"]) == outcomes.count("ok") == len(FakeOpenAI.steps)


def can_unshare() -> bool:
    try:
        return (
            subprocess.run(["unshare", "--pid", "--fork", "--kill-child", "true"], capture_output=True).returncode == 0
        )
    except OSError:
        return False


@pytest.mark.skipif(not can_unshare(), reason="needs unshare(1) with a new pid namespace (root, Linux)")
async def test_a_replica_that_looks_remote_hands_over_only_after_its_lease(replicas):
    """A in its own pid namespace is, to B, on another machine (its pids mean nothing there), as replicas in
    two containers are: B must wait for A's lease to run out before taking the job over."""
    lease_s = 4.0
    replicas.config(f"[server]\njob_lease_s = {lease_s}\n")
    b, job_id, died = await start_then_kill_in_step_2(replicas, "unshare", "--pid", "--fork", "--kill-child")
    assert (await call(b, "oracle_result", {"job_id": job_id}))["status"] == "running"  # A still holds the lease
    view = await poll(b, job_id)
    assert view["status"] == "done", view
    assert FakeOpenAI.steps == [1, 2, 2]  # step 1 replayed, not paid again
    renewed_at_most_before = lease_s / 8 + 0.5  # A renewed its lease every lease_s / 8 until it died
    assert FakeOpenAI.times[2] - died >= lease_s - renewed_at_most_before
