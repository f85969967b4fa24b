"""Throughput of 1 versus 2 `cadre up` replicas, 50 concurrent clients, a loopback fake OpenAI.

Each arm starts its replicas (`cadre up --servers oracle`, one port each) on one fresh state: a shared
XDG data folder (the SQLite files), or `--storage-url` (PostgreSQL; each arm gets a fresh schema). The
fake provider (`bench/_fake_openai.py`, here answering the oracle's JSON) waits `--delay-ms` per request,
as a model would. `--clients` concurrent clients then send `consult_oracle` as raw streamable-HTTP
`tools/call` posts (the stateless mode needs no session) for `--seconds`, spread round-robin over the
replicas as a load balancer would. Reported: completed calls per second, p50 and p95 latency, errors;
the ledger rows are checked against the completed calls at the end.

    .venv/bin/python bench/replicas.py [--clients 50] [--seconds 20] [--delay-ms 100] [--storage-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, REPO_ROOT, environment_info, isolated_dirs, markdown_table, summary, write_results
from cadre_app.testing import free_port, wait_until_healthy

ANSWER = {"answer": "Add the tenant to the cache key.", "key_points": ["tenant"], "risks": [], "next_steps": [],
          "confidence": "high", "citations": []}  # fmt: skip
FAKE = (
    "import json, sys; sys.path.insert(0, {bench!r}); import _fake_openai as fake; "
    "fake.ANSWER = json.dumps({answer!r}); fake.main(['--delay-ms', {delay!r}])"
)
QUESTION = {"question": "Why do tenants share cache entries?"}
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "consult_oracle", "arguments": QUESTION}}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json",
           "mcp-protocol-version": "2025-11-25"}  # fmt: skip


def start_fake(delay_ms: float) -> tuple[subprocess.Popen[str], str]:
    code = FAKE.format(bench=str(BENCH_DIR), answer=ANSWER, delay=str(delay_ms))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit("the fake OpenAI server did not start")
    return proc, f"http://127.0.0.1:{line.split()[1]}/v1"


def start_replica(env: dict[str, str], root: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "cadre_app.cli", "up", "--port", str(port), "--servers", "oracle",
           "--root", str(root), "--log-level", "WARNING"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    if wait_until_healthy(proc, f"http://127.0.0.1:{port}"):
        return proc, f"http://127.0.0.1:{port}/oracle/mcp"
    proc.kill()
    raise SystemExit("cadre up did not start")


async def load(urls: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` loops posting tool calls round-robin over `urls` for `seconds`; latencies and errors."""
    import httpx2

    targets = itertools.cycle(urls)
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx2.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx2.AsyncClient(timeout=60, limits=limits) as http:
        stop = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    reply = await http.post(next(targets), json=CALL, headers=HEADERS)
                    ok = reply.status_code == 200 and '"isError":false' in reply.text.replace(" ", "")
                except httpx2.HTTPError as exc:
                    ok, reply = False, exc
                if ok:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors.append(str(getattr(reply, "text", reply))[:200])

        began = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.monotonic() - began
    return {"calls": len(latencies), "errors": len(errors), "error_sample": errors[:2],
            "calls_per_s": len(latencies) / elapsed, "latency": summary(latencies)}  # fmt: skip


def ledger_rows(env: dict[str, str]) -> int:
    done = subprocess.run([sys.executable, "-m", "cadre_app.cli", "cost", "--json", "--by", "model"], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return sum(m["ok"] for m in json.loads(done.stdout)["model"])


def fresh_schema_url(url: str) -> str:
    import psycopg

    schema = "bench_" + secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{url}{'&' if '?' in url else '?'}options=-c%20search_path%3D{schema}"


def arm(replicas: int, args: argparse.Namespace, provider: str) -> dict[str, Any]:
    tmp, xdg = isolated_dirs("cadre-bench-replicas-")
    base = Path(tmp.name)
    (base / "ws").mkdir()
    (base / "ws" / "cache.py").write_text("def cache_key(query):\n    return query\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(base), **xdg, "OPENAI_API_KEY": "sk-bench",
           "OPENAI_BASE_URL": provider}  # fmt: skip
    if args.storage_url:
        env["CADRE_STORAGE_URL"] = fresh_schema_url(args.storage_url)
    procs = [start_replica(env, base / "ws") for _ in range(replicas)]
    try:
        asyncio.run(load([u for _, u in procs], min(args.clients, 5), 2.0))  # warm-up: imports, SDK clients
        result = asyncio.run(load([u for _, u in procs], args.clients, args.seconds))
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=30)
    result["ledger_ok_rows"] = ledger_rows(env)
    tmp.cleanup()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--delay-ms", type=float, default=100.0, help="the fake model's time per request")
    parser.add_argument("--storage-url", default=None, help="postgresql://… shared by the replicas")
    args = parser.parse_args()
    os.chdir(REPO_ROOT)
    fake, provider = start_fake(args.delay_ms)
    try:
        arms = {n: arm(n, args, provider) for n in (1, 2)}
    finally:
        assert fake.stdin is not None
        fake.stdin.close()
        fake.wait(timeout=10)
    rows = [[f"{n} replica{'s' if n > 1 else ''}", r["calls_per_s"], r["latency"]["median_ms"],
             r["latency"]["p95_ms"], r["calls"], r["errors"]] for n, r in arms.items()]  # fmt: skip
    backend = "PostgreSQL" if args.storage_url else "SQLite (shared folder)"
    print(f"{args.clients} clients, {args.seconds:g} s, fake model {args.delay_ms:g} ms, {backend}")
    print(markdown_table(["", "calls/s", "p50 ms", "p95 ms", "calls", "errors"], rows))
    print(f"ratio 2/1: {arms[2]['calls_per_s'] / arms[1]['calls_per_s']:.2f}x")
    data = {"environment": environment_info(), "args": vars(args), "arms": arms}
    print(f"results: {write_results('replicas', data)}")


if __name__ == "__main__":
    main()
