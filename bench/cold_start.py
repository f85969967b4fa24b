"""Cold start of the kit-built servers over stdio versus a bare `MCPServer`.

Each sample spawns a fresh server process and times spawn -> `tools/list` answered:
the wait a host's user sees before the tools appear. Kit servers (`python -m
cadre_oracle` and friends) are measured against `bench/_bare_server.py`, a bare
`MCPServer` with no tools (the kit servers expose none yet), in the same run.
Runs alternate bare/kit, and which one goes first flips every round, so drift
on the machine hits both sides alike.

Two clients:
  raw  (default) newline-delimited JSON-RPC over the pipes: initialize ->
       notifications/initialized -> tools/list, as today's hosts do. Nothing
       but the server's own work is on the clock.
  mcp  the real `mcp.Client` over stdio (mode "auto": it probes
       `server/discover` and speaks 2026-07-28). Adds the client's own overhead.

The bar: kit median / bare median <= 1.15 for every server.

    .venv/bin/python bench/cold_start.py [--runs 15] [--client raw|mcp]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    environment_info,
    host_env,
    isolated_dirs,
    markdown_table,
    percentile,
    summary,
    write_results,
)

BAR = 1.15
KIT_SERVERS = {
    "oracle": "cadre_oracle",
    "librarian": "cadre_librarian",
    "search": "cadre_search",
}
PROTOCOL = "2025-11-25"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": PROTOCOL,
        "capabilities": {},
        "clientInfo": {"name": "cadre-bench", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}


class SpawnError(RuntimeError):
    """A server did not answer as expected."""


def commands(servers: list[str]) -> dict[str, list[str]]:
    cmds = {"bare": [sys.executable, str(BENCH_DIR / "_bare_server.py")]}
    for name in servers:
        cmds[name] = [sys.executable, "-m", KIT_SERVERS[name]]
    return cmds


# --- raw JSON-RPC client -------------------------------------------------------------


class _Reader:
    """Newline-delimited JSON messages from a pipe, with a deadline."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, b""

    def message(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise SpawnError("timed out waiting for the server")
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise SpawnError("server closed stdout")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def response(self, request_id: int, deadline: float) -> dict[str, Any]:
        while True:
            msg = self.message(deadline)
            if msg.get("id") == request_id and ("result" in msg or "error" in msg):
                if "error" in msg:
                    raise SpawnError(f"server returned an error: {msg['error']}")
                return msg["result"]


def _send(proc: subprocess.Popen[bytes], msg: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(msg).encode() + b"\n")


def run_raw(cmd: list[str], env: dict[str, str], cwd: str, timeout: float, errlog: Path) -> tuple[float, int]:
    """Spawn, handshake, list tools; the ms from spawn to the tools/list answer."""
    with errlog.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd, bufsize=0
        )
        try:
            assert proc.stdout is not None
            reader, deadline = _Reader(proc.stdout.fileno()), started + timeout
            _send(proc, INITIALIZE)
            reader.response(1, deadline)
            _send(proc, INITIALIZED)
            _send(proc, TOOLS_LIST)
            tools = reader.response(2, deadline)["tools"]
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            _stop(proc)
    return elapsed, len(tools)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Close stdin (the stdio shutdown signal) and reap; kill if it lingers."""
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=5)
    except (subprocess.TimeoutExpired, OSError):
        proc.kill()
        proc.wait()
    finally:
        if proc.stdout:
            proc.stdout.close()


def run_floor(env: dict[str, str], cwd: str) -> float:
    """Interpreter start and exit alone (`python -c pass`), for context."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, cwd=cwd, check=True)
    return (time.perf_counter() - started) * 1000


# --- real mcp client -----------------------------------------------------------------


async def run_mcp(cmd: list[str], env: dict[str, str], cwd: str, limit_s: float, errlog: Path) -> tuple[float, int]:
    import anyio
    from mcp import Client, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env, cwd=cwd)
    with errlog.open("w") as err, anyio.fail_after(limit_s):
        started = time.perf_counter()
        # The same transport `Client(params)` builds, with the server's stderr kept aside.
        async with Client(stdio_client(params, errlog=err)) as c:
            result = await c.list_tools(cache_mode="refresh")
            elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(result.tools)


# --- the run -------------------------------------------------------------------------


def schedule(kits: list[str], rounds: int) -> list[tuple[str, str]]:
    """(bare, kit) pairs; the kit order rotates and which side runs first flips each round."""
    pairs: list[tuple[str, str]] = []
    for r in range(rounds):
        shift = r % len(kits)
        for kit in kits[shift:] + kits[:shift]:
            pairs.append((kit, "bare") if r % 2 else ("bare", kit))
    return pairs


def measure(args: argparse.Namespace) -> dict[str, Any]:
    kits = args.servers
    cmds = commands(kits)
    tmp, xdg = isolated_dirs("cadre-bench-cold-")
    with tmp:
        cwd = str(Path(tmp.name) / "workspace")
        Path(cwd).mkdir()
        env = host_env({**xdg, "PYTHONUNBUFFERED": "1"})
        logs = Path(tempfile.mkdtemp(dir=tmp.name, prefix="stderr-"))
        samples: dict[str, list[float]] = {name: [] for name in cmds}
        tool_counts: dict[str, int] = {}
        floor: list[float] = []

        if args.client == "mcp":
            import anyio

            def one(name: str) -> tuple[float, int]:
                return anyio.run(run_mcp, cmds[name], env, cwd, args.timeout, logs / f"{name}.log")
        else:

            def one(name: str) -> tuple[float, int]:
                return run_raw(cmds[name], env, cwd, args.timeout, logs / f"{name}.log")

        def checked(name: str) -> float:
            try:
                ms, count = one(name)
            except Exception as exc:
                log = (logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{name} ({' '.join(cmds[name])}) failed: {exc}\n{log}") from exc
            tool_counts[name] = count
            return ms

        warm = schedule(kits, args.warmup)
        timed = schedule(kits, args.runs)
        paired: dict[str, list[float]] = {kit: [] for kit in kits}
        total, done = 2 * (len(warm) + len(timed)), 0
        for number, pair in enumerate(warm + timed):
            ms = {}
            for name in pair:
                ms[name] = checked(name)
                done += 1
                if not args.quiet:
                    print(f"\r[{done}/{total}] {name:<10} {ms[name]:8.1f} ms", end="", file=sys.stderr, flush=True)
            if number < len(warm):
                continue
            kit = next(n for n in pair if n != "bare")
            for name, value in ms.items():
                samples[name].append(value)
            paired[kit].append(ms[kit] / ms["bare"])
            if len(floor) < args.runs:
                floor.append(run_floor(env, cwd))
        if not args.quiet:
            print(file=sys.stderr)

    bare = summary(samples["bare"])
    results: dict[str, Any] = {}
    for name, values in samples.items():
        stats = summary(values)
        stats["tools"] = tool_counts.get(name)
        if name != "bare":
            stats["ratio_median"] = stats["median_ms"] / bare["median_ms"]
            stats["ratio_p90"] = stats["p90_ms"] / bare["p90_ms"]
            stats["ratio_paired_median"] = percentile(paired[name], 50)
            stats["delta_median_ms"] = stats["median_ms"] - bare["median_ms"]
            stats["pass"] = stats["ratio_median"] <= BAR
        stats["samples_ms"] = [round(v, 3) for v in values]
        results[name] = stats
    return {
        "benchmark": "cold_start",
        "what": "spawn -> tools/list answered over stdio",
        "client": args.client,
        "protocol": PROTOCOL if args.client == "raw" else "mcp.Client auto",
        "runs": args.runs,
        "warmup_rounds": args.warmup,
        "bar_ratio_median": BAR,
        "commands": {k: [Path(c).name if c == sys.executable else c for c in v] for k, v in cmds.items()},
        "interpreter_floor": {**summary(floor), "samples_ms": [round(v, 3) for v in floor]},
        "results": results,
        "pass": all(r.get("pass", True) for r in results.values()),
        "env": environment_info(),
    }


def report(data: dict[str, Any]) -> str:
    rows = []
    for name, r in data["results"].items():
        label = "bare MCPServer" if name == "bare" else f"kit: {name}"
        ratio = "1.00" if name == "bare" else f"{r['ratio_median']:.3f}"
        ok = "" if name == "bare" else ("PASS" if r["pass"] else "FAIL")
        pair = "" if name == "bare" else f"{r['ratio_paired_median']:.3f}"
        rows.append([label, r["tools"], r["n"], r["median_ms"], r["p90_ms"], r["min_ms"], ratio, pair, ok])
    floor = data["interpreter_floor"]
    rows.append(
        ["python -c pass (floor)", "", floor["n"], floor["median_ms"], floor["p90_ms"], floor["min_ms"], "", "", ""]
    )
    head = (
        f"Cold start, spawn -> tools/list over stdio ({data['client']} client), "
        f"{data['runs']} runs each, bar kit/bare median <= {data['bar_ratio_median']}"
    )
    table = markdown_table(
        ["server", "tools", "n", "median ms", "p90 ms", "min ms", "kit/bare median", "paired ratio", "bar"], rows
    )
    verdict = "PASS" if data["pass"] else "FAIL"
    return f"{head}\n\n{table}\n\nOverall: {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Cold start (spawn -> tools/list over stdio) of the Cadre kit servers vs a bare MCPServer.",
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per server (default: 15)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up rounds first (default: 1)")
    parser.add_argument(
        "--servers",
        default=",".join(KIT_SERVERS),
        help=f"comma-separated kit servers to measure (default: {','.join(KIT_SERVERS)})",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "mcp"),
        default="raw",
        help="raw JSON-RPC over pipes (default) or the real mcp.Client",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per spawn (default: 30)")
    parser.add_argument("--out", type=Path, help="JSON output (default: bench/results/cold_start.json)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a server misses the bar")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in args.servers if s not in KIT_SERVERS]
    if unknown or not args.servers:
        parser.error(f"unknown server(s) {unknown}; choose from {', '.join(KIT_SERVERS)}")
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")

    data = measure(args)
    path = write_results("cold_start", data, args.out)
    print(report(data))
    print(f"\nJSON: {path}")
    return 1 if args.check and not data["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
