"""Overhead of a routed call with its state in PostgreSQL vs in SQLite, side by side in one run.

Three arms hit the same loopback fake of the OpenAI Responses API (`bench/_fake_openai.py`) with the same
request, as in `bench/overhead.py`:

  direct      AsyncOpenAI(base_url=loopback).responses.create(...)
  sqlite      Router + Ledger + Budget on SQLite files (the default)
  postgresql  Router + Ledger + Budget on PostgreSQL ([storage] url)

Both routed arms have a `[budget] per_day_usd` cap, so each call reserves its worst case and settles in the
store before and after the model call: that is the part of a routed call that waits on the database (the
ledger row is written by a background thread). Calls rotate through the arms, the starting arm moving
by one each call. At the end each store must hold one ledger row and one settled reservation per call.

PostgreSQL: `--pg-url`, else CADRE_BENCH_PG_URL, else a throwaway cluster started here (Debian's
postgresql binaries; initdb into a temp dir, loopback port, as the `postgres` user when run as root).

    .venv/bin/python bench/storage_overhead.py [--calls 500] [--warmup 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import environment_info, isolated_dirs, markdown_table, summary, write_results
from overhead import PROMPT, ROLE, SYSTEM, direct_params, isolate_env, start_fake, stop_fake, timed

ARMS = ("direct", "sqlite", "postgresql")


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster in a temp dir on a free loopback port, stopped and removed on exit; its URL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("no PostgreSQL binaries: apt-get install postgresql, or pass --pg-url")
    bin_dir = Path(found[-1]).parent
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    with tempfile.TemporaryDirectory(prefix="cadre-bench-pg-") as tmp:
        if as_user:
            subprocess.run(["chown", "postgres", tmp], check=True)
        password = secrets.token_hex(12)
        pwfile = Path(tmp) / "pw"
        pwfile.write_text(password)
        if as_user:
            subprocess.run(["chown", "postgres", str(pwfile)], check=True)
        data = f"{tmp}/data"
        subprocess.run([*as_user, f"{bin_dir}/initdb", "-D", data, "-U", "cadre", "--auth=scram-sha-256",
                        f"--pwfile={pwfile}"], check=True, capture_output=True)  # fmt: skip
        pwfile.unlink()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1"
        subprocess.run([*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-l", f"{tmp}/log", "-w", "-o", options, "start"],
                       check=True, capture_output=True)  # fmt: skip
        try:
            yield f"postgresql://cadre:{password}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)


async def run(args: argparse.Namespace, base: Path, xdg: dict[str, str], pg_url: str) -> dict[str, Any]:
    from openai import AsyncOpenAI

    from cadre_core.budget import Budget
    from cadre_core.config import load_config
    from cadre_core.ledger import Ledger
    from cadre_core.logs import configure_logging
    from cadre_core.models.base import Message, ModelRequest
    from cadre_core.router import Router

    fake, port = start_fake(args.delay_ms)
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        workspace = base / "workspace"
        (workspace / ".git").mkdir(parents=True)
        isolate_env(base, xdg, base_url)
        configure_logging("WARNING")
        config = load_config(workspace).config
        config.budget.per_day_usd = 1_000_000.0  # never reached: every call reserves and settles
        routers = {}
        for arm, target in (("sqlite", None), ("postgresql", pg_url)):
            ledger = Ledger(base / f"{arm}-ledger.sqlite", url=target)
            budget = Budget(target or base / f"{arm}-budget.sqlite", ledger=ledger)
            routers[arm] = Router(config, ledger, budget=budget)
        client = AsyncOpenAI(api_key="fake", base_url=base_url, max_retries=0)
        request = ModelRequest(messages=[Message.user(PROMPT)], system=SYSTEM)
        params = direct_params()

        async def direct() -> None:
            if not (await client.responses.create(**params)).output_text:
                raise RuntimeError("direct call returned no text")

        def routed(arm: str) -> Any:
            async def call() -> None:
                r = await routers[arm].request(ROLE, request)
                if not r.text or r.cost_usd is None:
                    raise RuntimeError(f"{arm}: no text or no cost: {r!r}")

            return call

        calls = {"direct": direct, "sqlite": routed("sqlite"), "postgresql": routed("postgresql")}
        for _ in range(args.warmup):
            for fn in calls.values():
                await fn()
        samples: dict[str, list[float]] = {arm: [] for arm in ARMS}
        wall = time.perf_counter()
        for i in range(args.calls):
            for arm in ARMS[i % 3 :] + ARMS[: i % 3]:
                await timed(calls[arm], samples[arm])
        wall = time.perf_counter() - wall
        checks = {}
        for arm, router in routers.items():
            assert router.budget is not None
            flushed = router.ledger.flush(30.0)
            store = router.ledger.store
            assert store is not None
            rows = store.summary("role")[0]["attempts"]
            settled = router.budget.db.fetchone("SELECT COUNT(*), MIN(settled) FROM spend")
            expected = args.calls + args.warmup
            checks[arm] = {"ledger_rows": rows, "reservations": settled[0] if settled else 0, "expected": expected,
                           "pass": flushed and rows == expected and settled == (expected, 1)}  # fmt: skip
            await router.aclose()
        await client.close()
    finally:
        stop_fake(fake)
    stats = {arm: summary(values) for arm, values in samples.items()}
    return {
        "benchmark": "storage_overhead",
        "what": "routed call (Router + Ledger + Budget with a per-day cap) on SQLite vs PostgreSQL vs direct SDK",
        "calls": args.calls,
        "warmup": args.warmup,
        "server_delay_ms": args.delay_ms,
        "order": "rotating per call",
        "wall_s": wall,
        "results": stats,
        "overhead_ms": {
            arm: {q: stats[arm][q] - stats["direct"][q] for q in ("median_ms", "p95_ms")} for arm in ARMS[1:]
        },
        "stores": checks,
        "pass": all(c["pass"] for c in checks.values()),
        "env": environment_info(),
    }


def report(data: dict[str, Any]) -> str:
    r, over = data["results"], data["overhead_ms"]
    rows = [[arm, r[arm]["n"], r[arm]["median_ms"], r[arm]["p95_ms"],
             over[arm]["median_ms"] if arm in over else "", over[arm]["p95_ms"] if arm in over else ""]
            for arm in ARMS]  # fmt: skip
    table = markdown_table(["arm", "n", "p50 ms", "p95 ms", "p50 over direct", "p95 over direct"], rows)
    stores = "; ".join(f"{arm}: {c['ledger_rows']} ledger rows, {c['reservations']} reservations settled "
                       f"(expected {c['expected']})" for arm, c in data["stores"].items())  # fmt: skip
    return "\n".join([
        f"Routed-call overhead by storage backend, {data['calls']} calls per arm after {data['warmup']} warm-up, "
        f"loopback Responses API (delay {data['server_delay_ms']} ms)",
        "",
        table,
        "",
        stores,
        f"Overall: {'PASS' if data['pass'] else 'FAIL'}",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Routed-call overhead: PostgreSQL vs SQLite ledger and budget.")
    parser.add_argument("--calls", type=int, default=500, help="timed calls per arm (default: 500)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed warm-up calls per arm (default: 30)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="fake server delay per request (default: 0)")
    parser.add_argument("--pg-url", default=os.environ.get("CADRE_BENCH_PG_URL"), help="an empty PostgreSQL "
                        "database to use (default: CADRE_BENCH_PG_URL, else a throwaway cluster)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="JSON output (default: bench/results/storage_overhead.json)")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be >= 1 and --warmup >= 0")
    tmp, xdg = isolated_dirs("cadre-bench-storage-")
    saved = dict(os.environ)
    try:
        with tmp, contextlib.ExitStack() as stack:
            pg_url = args.pg_url or stack.enter_context(throwaway_postgres())
            data = asyncio.run(run(args, Path(tmp.name), xdg, pg_url))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    path = write_results("storage_overhead", data, args.out)
    print(report(data))
    print(f"\nJSON: {path}")
    return 0 if data["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
