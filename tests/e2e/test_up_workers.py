"""`cadre up --workers N` as a real process tree: N workers on one port, a dead worker replaced, SIGTERM stops all."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from cadre_app.testing import free_port
from tests.e2e.test_up import HEADERS, INIT, TOKEN

pytestmark = pytest.mark.anyio


def children(pid: int) -> set[int]:
    """The worker processes of `pid`: its children (Linux: /proc/<pid>/task/*/children) that multiprocessing
    spawned, leaving out its resource tracker."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.add(int(child))
            except OSError:  # exited meanwhile
                pass
    return found


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def healthy(port: int) -> bool:
    try:
        return httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


def command(tmp_path, port: int, *extra: str) -> tuple[list[str], dict[str, str]]:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "alpha.py").write_text("def alpha_function():\n    return 1\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip
    cmd = [sys.executable, "-m", "cadre_app.cli", "up", "--port", str(port), "--servers", "search", "--grace", "2",
           "--root", str(tmp_path / "ws"), "--workers", "2", *extra]  # fmt: skip
    return cmd, env


@pytest.fixture
def workers(tmp_path, request):
    port = free_port()
    extra = getattr(request, "param", ())
    cmd, env = command(tmp_path, port, *extra)
    if extra:  # a public bind
        env["CADRE_TOKENS"] = TOKEN
    log = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        wait_for(lambda: healthy(port) and len(children(proc.pid)) == 2, 60)
        yield proc, port, tmp_path / "stderr"
    finally:
        proc.terminate()  # stops the workers too
        proc.wait(timeout=30)
        log.close()


async def test_two_workers_serve_one_port_and_a_dead_worker_is_replaced(workers):
    proc, port, stderr = workers
    first = children(proc.pid)
    assert f"workers started (pids {', '.join(str(p) for p in sorted(first))})" in stderr.read_text()
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(lambda: (c := children(proc.pid)) - first and len(c) == 2 and c)
    (new,) = replaced - first
    line = wait_for(lambda: [ln for ln in stderr.read_text().splitlines() if "exited" in ln])
    assert line == [f"cadre up: worker {victim} exited (status -9); started worker {new}"]
    wait_for(lambda: healthy(port))
    for _ in range(4):  # both workers (the survivor and the replacement) accept on the shared socket
        async with Client(f"http://127.0.0.1:{port}/search/mcp") as client:
            result = await client.call_tool("search_codebase", {"query": "alpha function"})
        assert result.structured_content["hits"][0]["path"] == "alpha.py"


def test_sigterm_to_the_parent_stops_every_worker(workers):
    proc, _, stderr = workers
    pids = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    for pid in pids:  # reaped by the parent, so gone from the process table
        assert not Path(f"/proc/{pid}").exists()
    assert "Traceback" not in stderr.read_text()


@pytest.mark.parametrize("workers", [("--host", "0.0.0.0")], indirect=True)  # noqa: S104 - the point of the test
def test_every_worker_of_a_public_bind_requires_the_token(workers):
    _, port, _ = workers
    url = f"http://127.0.0.1:{port}/search/mcp"
    with httpx2.Client() as http:  # a new connection each time: either worker may accept it
        for _ in range(6):
            assert http.post(url, json=INIT, headers={**HEADERS, "connection": "close"}).status_code == 401
        ok = http.post(url, json=INIT, headers={**HEADERS, "authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_a_public_bind_without_tokens_stops_before_any_worker_starts(tmp_path):
    cmd, env = command(tmp_path, free_port(), "--host", "0.0.0.0")  # noqa: S104
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "bearer tokens are required" in done.stderr and "workers started" not in done.stderr
