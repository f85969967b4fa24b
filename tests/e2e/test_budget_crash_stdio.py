"""kill -9 of a real oracle server with model calls in flight: the next open settles them and the cap comes back."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import anyio
import pytest
from mcp import Client, StdioServerParameters

from cadre_core import owner
from tests.e2e.loopback import serving

pytestmark = pytest.mark.anyio
IN_FLIGHT = 4


class SlowOpenAI(BaseHTTPRequestHandler):
    """Takes each request and answers only once released (never, for a server that was killed)."""

    received: ClassVar[list[dict]] = []
    release = threading.Event()

    def do_POST(self):
        SlowOpenAI.received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        SlowOpenAI.release.wait(60)
        with contextlib.suppress(OSError):  # its client is gone
            self.send_response(503)
            self.end_headers()

    def log_message(self, *args):
        return


def cadre_cost(tmp_path, env) -> dict:
    """`cadre cost --json` as a user runs it: a new process that opens the budget store."""
    done = subprocess.run([sys.executable, "-m", "cadre_app.cli", "--root", str(tmp_path / "ws"), "cost", "--json"],
                          capture_output=True, text=True, env=env, timeout=60, check=True)  # fmt: skip
    return json.loads(done.stdout)


def wait_until(check, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def per_day(report: dict) -> dict:
    return next(cap for cap in report["budgets"] if cap["cap"] == "per_day_usd")


def held(path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT owner, amount, input_usd, model FROM spend WHERE settled = 0").fetchall()


async def test_a_killed_server_gives_its_reservations_back(tmp_path):
    SlowOpenAI.received, SlowOpenAI.release = [], threading.Event()
    ws, data = tmp_path / "ws", tmp_path / "data"
    ws.mkdir()
    (ws / "cache.py").write_text("def cache_key(query):\n    return query\n")
    (ws / ".cadre.toml").write_text(
        f'[budget]\nper_day_usd = 20.0\n[paths]\nbudget = "{data / "budget.sqlite"}"\n'
        f'ledger = "{data / "ledger.sqlite"}"\njobs = "{data / "jobs.sqlite"}"\n'
    )
    with serving(SlowOpenAI) as url:
        env = {
            "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": url, "HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
            "XDG_DATA_HOME": str(data), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }  # fmt: skip
        params = StdioServerParameters(command=sys.executable, args=["-m", "cadre_oracle", "--root", str(ws)], env=env)
        client = Client(params)
        await client.__aenter__()
        try:
            for n in range(IN_FLIGHT):
                await client.call_tool(
                    "consult_oracle", {"question": f"Question {n} about cache keys?", "files": ["cache.py"],
                                       "wait": False},
                )  # fmt: skip
            assert await anyio.to_thread.run_sync(wait_until, lambda: len(SlowOpenAI.received) == IN_FLIGHT)
            reservations = held(data / "budget.sqlite")
            assert len(reservations) == IN_FLIGHT
            (server,) = {r[0] for r in reservations}  # host:pid:boot:start of the server process
            pid = int(server.rsplit(":", 3)[1])
            assert all(r[3] == "openai:gpt-6.1-sol" and 0 < r[2] < r[1] for r in reservations)

            alive = await anyio.to_thread.run_sync(cadre_cost, tmp_path, env)  # the owner runs: kept
            assert per_day(alive)["spent_usd"] == pytest.approx(sum(r[1] for r in reservations))
            assert alive["settled_after_crash"]["calls"] == 0
            assert len(held(data / "budget.sqlite")) == IN_FLIGHT

            os.kill(pid, signal.SIGKILL)
            assert await anyio.to_thread.run_sync(wait_until, lambda: not owner.owner_alive(server))
        finally:
            SlowOpenAI.release.set()
            with contextlib.suppress(Exception):  # it finds its server gone
                await client.__aexit__(None, None, None)

    after = await anyio.to_thread.run_sync(cadre_cost, tmp_path, env)
    inputs = sum(r[2] for r in reservations)
    assert held(data / "budget.sqlite") == []
    assert per_day(after)["spent_usd"] == pytest.approx(inputs, abs=1e-6)  # billed for input at most
    assert per_day(after)["remaining_usd"] == pytest.approx(20.0 - inputs, abs=1e-6)  # the cap is back
    assert after["settled_after_crash"] == {"calls": IN_FLIGHT, "cost_usd": pytest.approx(inputs, abs=1e-6)}
    with contextlib.closing(sqlite3.connect(data / "ledger.sqlite")) as conn:
        rows = conn.execute(
            "SELECT outcome, error_class, server, tool, provider, model FROM attempts "
            "WHERE error_class = 'process_died'"
        ).fetchall()
    assert rows == [("cancelled", "process_died", "cadre-oracle", "consult_oracle", "openai", "gpt-6.1-sol")] * 4
