"""Overhead of a routed call: Router + Ledger versus the same openai SDK call made directly.

Both arms hit the same loopback fake of the OpenAI Responses API
(`bench/_fake_openai.py`, uvicorn + starlette in a subprocess on 127.0.0.1 at
a free port) with the same request body:

  direct  AsyncOpenAI(base_url=loopback, max_retries=0).responses.create(...)
  routed  Router(config, Ledger(tmp/ledger.sqlite)).request("oracle", ModelRequest(...))

The Router is built from `cadre_core.config.load_config` with OPENAI_API_KEY=fake,
OPENAI_BASE_URL=loopback and CADRE_CONFIG pointing at a temp toml whose oracle
role has one openai candidate. XDG_* dirs point into a temp dir. After a
warm-up, calls alternate direct/routed (the pair order flips every call) and the
ledger is checked at the end: one row per routed call, warm-up included.

A short breakdown times the router's pieces without HTTP (a stub model behind
the same Router and Ledger, and the OpenAI adapter's build/parse) so a regression
can be located, not just seen.

The bar: routed p50 - direct p50 <= 5 ms.

    .venv/bin/python bench/overhead.py [--calls 1000] [--warmup 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    environment_info,
    isolated_dirs,
    markdown_table,
    summary,
    write_results,
)

BAR_MS = 5.0
ROLE = "oracle"
MODEL = "gpt-6.1-sol"
EFFORT = "high"
MAX_OUTPUT_TOKENS = 32000
SYSTEM = (
    "You are the oracle: a senior engineer asked for a second opinion. Answer with the key points, "
    "the risks, the next steps and your confidence. Cite files and lines when you can.\n" * 6
)
PROMPT = (
    "Review this change and say whether it is safe to ship.\n\n```python\n"
    + "".join(
        f"def cache_key_{i}(query: str, page: int) -> str:\n    return f'{{query}}:{{page}}:{i}'  # TODO tenant?\n\n"
        for i in range(40)
    )
    + "```\n"
)


def start_fake(delay_ms: float, timeout: float = 20.0) -> tuple[subprocess.Popen[str], int]:
    """Start the fake provider in a subprocess; its port once it listens."""
    proc = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "_fake_openai.py"), "--delay-ms", str(delay_ms)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("PORT "):
            return proc, int(line.split()[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("the fake OpenAI server did not start")


def stop_fake(proc: subprocess.Popen[str]) -> None:
    try:
        if proc.stdin:
            proc.stdin.close()  # the fake exits at EOF on stdin
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def isolate_env(base: Path, xdg: dict[str, str], base_url: str) -> Path:
    """Point config, keys and XDG dirs at temp values; return the CADRE_CONFIG file."""
    for name in list(os.environ):
        if name.startswith(("CADRE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_")):
            del os.environ[name]
    config_file = base / "cadre.toml"
    ledger = base / "ledger.sqlite"
    config_file.write_text(
        "[roles.oracle]\n"
        f'candidates = [{{ model = "openai:{MODEL}", effort = "{EFFORT}", '
        f"max_output_tokens = {MAX_OUTPUT_TOKENS} }}]\n\n"
        "[paths]\n"
        f'ledger = "{ledger}"\n'
        f'threads = "{base / "threads.sqlite"}"\n',
        encoding="utf-8",
    )
    os.environ.update(
        {
            **xdg,
            "OPENAI_API_KEY": "fake",
            "OPENAI_BASE_URL": base_url,
            "CADRE_CONFIG": str(config_file),
            "CADRE_LOG_LEVEL": "WARNING",
        }
    )
    return config_file


def direct_params() -> dict[str, Any]:
    """What the router's OpenAI adapter sends for the bench request, written out by hand."""
    return {
        "model": MODEL,
        "input": [{"role": "user", "content": PROMPT}],
        "max_output_tokens": MAX_OUTPUT_TOKENS,
        "instructions": SYSTEM,
        "reasoning": {"effort": EFFORT},
    }


async def timed(fn: Callable[[], Awaitable[object]], out: list[float] | None) -> None:
    started = time.perf_counter_ns()
    await fn()
    if out is not None:
        out.append((time.perf_counter_ns() - started) / 1e6)


async def run(args: argparse.Namespace, base: Path, xdg: dict[str, str]) -> dict[str, Any]:
    from openai import AsyncOpenAI

    from cadre_core.config import load_config
    from cadre_core.ledger import Ledger
    from cadre_core.logs import configure_logging
    from cadre_core.models.base import Message, ModelRequest
    from cadre_core.models.openai import OpenAIModel
    from cadre_core.router import Router

    fake, port = start_fake(args.delay_ms)
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        workspace = base / "workspace"
        (workspace / ".git").mkdir(parents=True)  # stops the .cadre.toml walk here
        config_file = isolate_env(base, xdg, base_url)
        configure_logging("WARNING")
        loaded = load_config(workspace)
        ledger_path = base / "ledger.sqlite"
        ledger = Ledger(ledger_path)
        router = Router(loaded.config, ledger)
        client = AsyncOpenAI(api_key="fake", base_url=base_url, max_retries=0)

        request = ModelRequest(messages=[Message.user(PROMPT)], system=SYSTEM)
        sized = _sized(request)
        params = direct_params()
        sent = OpenAIModel(MODEL, api_key="fake").build_params(sized)
        if sent != params:
            raise SystemExit(f"direct and routed bodies differ:\n{sent}\n!=\n{params}")

        async def direct() -> None:
            r = await client.responses.create(**params)
            if not r.output_text:
                raise RuntimeError("direct call returned no text")

        async def routed() -> None:
            r = await router.request(ROLE, request)
            if not r.text or r.cost_usd is None:
                raise RuntimeError(f"routed call returned no text or no cost: {r!r}")

        for _ in range(args.warmup):
            await direct()
            await routed()

        samples: dict[str, list[float]] = {"direct": [], "routed": []}
        wall = time.perf_counter()
        for i in range(args.calls):
            pair = [("direct", direct), ("routed", routed)]
            for name, fn in pair if i % 2 == 0 else reversed(pair):
                await timed(fn, samples[name])
        wall = time.perf_counter() - wall

        flushed = ledger.flush(10.0)
        with sqlite3.connect(ledger_path) as conn:
            rows, ok, priced, providers = conn.execute(
                "SELECT COUNT(*), SUM(outcome = 'ok'), COUNT(cost_usd), COUNT(DISTINCT provider || ':' || model) "
                "FROM attempts"
            ).fetchone()
        await router.aclose()
        await client.close()

        breakdown = await measure_breakdown(args.breakdown, loaded.config, base, request)
    finally:
        stop_fake(fake)

    expected = args.calls + args.warmup
    stats = {name: summary(values) for name, values in samples.items()}
    delta_p50 = stats["routed"]["median_ms"] - stats["direct"]["median_ms"]
    ledger_ok = flushed and rows == expected and ok == expected and priced == expected
    return {
        "benchmark": "overhead",
        "what": "routed (Router + SQLite Ledger) vs direct openai SDK call to a loopback Responses API",
        "calls": args.calls,
        "warmup": args.warmup,
        "server_delay_ms": args.delay_ms,
        "order": "alternating per call, pair order flipped each call",
        "model": f"openai:{MODEL}",
        "config_file": config_file.name,
        "wall_s": wall,
        "bar_delta_p50_ms": BAR_MS,
        "results": {name: {**s, "samples_ms": [round(v, 4) for v in samples[name]]} for name, s in stats.items()},
        "delta_p50_ms": delta_p50,
        "delta_p95_ms": stats["routed"]["p95_ms"] - stats["direct"]["p95_ms"],
        "ledger": {
            "rows": rows,
            "ok": ok,
            "priced": priced,
            "models": providers,
            "expected": expected,
            "flushed": flushed,
            "pass": ledger_ok,
        },
        "breakdown_us": breakdown,
        "pass": delta_p50 <= BAR_MS and ledger_ok,
        "env": environment_info(),
    }


async def measure_breakdown(n: int, config: Any, base: Path, request: Any) -> dict[str, float]:
    """Median µs of the routed path's parts, without HTTP; {} when n == 0."""
    if n <= 0:
        return {}
    from openai.types.responses import Response

    from _fake_openai import response_body
    from cadre_core.config import Candidate
    from cadre_core.ledger import Ledger, LedgerRow
    from cadre_core.models.base import Model, ModelResponse, Usage
    from cadre_core.models.openai import OpenAIModel
    from cadre_core.pricing import price
    from cadre_core.router import Router

    class Stub(Model):
        provider = "openai"

        async def request(self, request: Any) -> ModelResponse:
            return ModelResponse(text="ok", usage=Usage(1320, 1024, 0, 156, 128), model=f"openai:{MODEL}")

    ledger = Ledger(base / "breakdown.sqlite")
    router = Router(config, ledger, model_factory=lambda c, cfg: Stub(MODEL))
    adapter = OpenAIModel(MODEL, api_key="fake")
    sized = _sized(request)
    body = adapter.build_params(sized)
    raw = Response.model_validate(response_body(1, body))
    candidate = Candidate(model=f"openai:{MODEL}", effort=EFFORT, max_output_tokens=MAX_OUTPUT_TOKENS)
    usage = Usage(1320, 1024, 0, 156, 128)

    async def stub_route() -> None:
        await router.request(ROLE, request)

    async def build() -> None:
        adapter.build_params(sized)

    async def parse() -> None:
        adapter.parse(raw, sized)

    async def validate() -> None:
        Response.model_validate(response_body(1, body))

    async def pricing() -> None:
        price(usage, "openai", MODEL)

    async def window() -> None:
        config.context_window(candidate)

    async def estimate() -> None:
        sized.estimated_input_tokens()

    async def enqueue() -> None:
        ledger.record(LedgerRow(role=ROLE, provider="openai", model=MODEL, outcome="ok"))

    parts = {
        "router_with_stub_model_total": stub_route,
        "router.context_window": window,
        "request.estimated_input_tokens": estimate,
        "pricing.price": pricing,
        "ledger.record (enqueue)": enqueue,
        "openai.build_params": build,
        "openai.parse": parse,
        "sdk Response.model_validate (both arms)": validate,
    }
    out: dict[str, float] = {}
    for name, fn in parts.items():
        for _ in range(min(50, n)):
            await fn()
        values: list[float] = []
        for _ in range(n):
            await timed(fn, values)
        out[name] = summary(values)["median_ms"] * 1000
    ledger.flush(10.0)
    return out


def _sized(request: Any) -> Any:
    """The request as the router sizes it for the candidate."""
    import dataclasses

    return dataclasses.replace(request, max_output_tokens=MAX_OUTPUT_TOKENS, effort=EFFORT)


def report(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = [
        [name, s["n"], s["median_ms"], s["p95_ms"], s["p90_ms"], s["min_ms"], s["mean_ms"]] for name, s in r.items()
    ]
    rows.append(
        [
            "routed - direct",
            "",
            data["delta_p50_ms"],
            data["delta_p95_ms"],
            r["routed"]["p90_ms"] - r["direct"]["p90_ms"],
            r["routed"]["min_ms"] - r["direct"]["min_ms"],
            r["routed"]["mean_ms"] - r["direct"]["mean_ms"],
        ]
    )
    table = markdown_table(["arm", "n", "p50 ms", "p95 ms", "p90 ms", "min ms", "mean ms"], rows)
    led = data["ledger"]
    lines = [
        f"Routed-call overhead, {data['calls']} calls per arm after {data['warmup']} warm-up, "
        f"loopback Responses API (delay {data['server_delay_ms']} ms), bar p50 delta <= {data['bar_delta_p50_ms']} ms",
        "",
        table,
        "",
        f"p50 overhead: {data['delta_p50_ms']:.3f} ms "
        f"({'PASS' if data['delta_p50_ms'] <= data['bar_delta_p50_ms'] else 'FAIL'})",
        f"Ledger rows: {led['rows']} (expected {led['expected']} = calls + warm-up; ok {led['ok']}, "
        f"priced {led['priced']}) {'PASS' if led['pass'] else 'FAIL'}",
    ]
    if data["breakdown_us"]:
        parts = [[k, v] for k, v in data["breakdown_us"].items()]
        lines += ["", "Breakdown without HTTP (median µs per call):", "", markdown_table(["part", "µs"], parts)]
    lines += ["", f"Overall: {'PASS' if data['pass'] else 'FAIL'}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Overhead of a routed call (Router + SQLite Ledger) vs a direct openai SDK call, "
        "both against a loopback fake Responses API.",
    )
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per arm (default: 1000)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed warm-up calls per arm (default: 50)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="fake server delay per request (default: 0)")
    parser.add_argument(
        "--breakdown",
        type=int,
        default=2000,
        help="iterations per part for the no-HTTP breakdown; 0 skips it (default: 2000)",
    )
    parser.add_argument("--out", type=Path, help="JSON output (default: bench/results/overhead.json)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the bar or the ledger check fails")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0 or args.breakdown < 0:
        parser.error("--calls must be >= 1; --warmup and --breakdown >= 0")

    tmp, xdg = isolated_dirs("cadre-bench-overhead-")
    saved = dict(os.environ)
    try:
        with tmp:
            data = asyncio.run(run(args, Path(tmp.name), xdg))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    path = write_results("overhead", data, args.out)
    print(report(data))
    print(f"\nJSON: {path}")
    return 1 if args.check and not data["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
