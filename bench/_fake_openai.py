"""A loopback fake of the OpenAI Responses API, for `overhead.py`.

A real HTTP server (uvicorn + starlette) on 127.0.0.1 at a free port. It prints
`PORT <n>` on stdout once it listens, answers `POST /v1/responses` with a
realistic completed response (a reasoning item and a text message, usage with
cached and reasoning tokens), and exits when its stdin closes.

    .venv/bin/python bench/_fake_openai.py [--delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import sys
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ANSWER = (
    "The cache key omits the tenant id, so two tenants with the same query share an entry. "
    "Add the tenant to the key in `cache_key()` and bump the cache version so old entries expire."
)


def response_body(n: int, request: dict[str, Any]) -> dict[str, Any]:
    """A completed Responses API answer, shaped like the real one."""
    created = int(time.time())
    return {
        "id": f"resp_68af0c1e5b8c8190{n:08x}",
        "object": "response",
        "created_at": created,
        "completed_at": created,
        "status": "completed",
        "background": False,
        "model": request.get("model", "gpt-6.1-sol"),
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": (request.get("reasoning") or {}).get("effort"), "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "user": None,
        "metadata": {},
        "output": [
            {
                "type": "reasoning",
                "id": f"rs_68af0c1f01{n:08x}",
                "summary": [],
                "encrypted_content": None,
                "status": "completed",
            },
            {
                "type": "message",
                "id": f"msg_68af0c1f02{n:08x}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": ANSWER, "annotations": [], "logprobs": []}],
            },
        ],
        "usage": {
            "input_tokens": 1320,
            "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 0},
            "output_tokens": 156,
            "output_tokens_details": {"reasoning_tokens": 128},
            "total_tokens": 1476,
        },
    }


def build_app(delay_s: float = 0.0) -> Starlette:
    counter = itertools.count(1)

    async def responses(request: Request) -> Response:
        n = next(counter)
        body = json.loads(await request.body())
        if delay_s:
            await asyncio.sleep(delay_s)
        return JSONResponse(
            response_body(n, body),
            headers={"x-request-id": f"req_{n:012x}", "openai-processing-ms": "1"},
        )

    return Starlette(routes=[Route("/v1/responses", responses, methods=["POST"])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback fake of the OpenAI Responses API.")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="server-side delay per request")
    args = parser.parse_args(argv)

    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # proto says TCP. Without it uvicorn's separate header/body writes meet Nagle + delayed
    # ACK and every response stalls ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(args.delay_ms / 1000), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the parent is done or gone
        server.should_exit = True

    threading.Thread(target=watch_stdin, daemon=True).start()
    # uvicorn prints nothing at log_level=warning; announce the port once it listens.
    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets=sockets)
        print(f"PORT {port}", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
