"""`cadre up`: serve the servers over streamable HTTP until SIGTERM or Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cadre_core.up import build_app, is_loopback, load_tokens


def run(args: Any) -> int:
    import uvicorn

    from cadre_core.logs import configure_logging

    configure_logging(args.log_level)
    names = [s.strip().removeprefix("cadre-") for s in args.servers.split(",") if s.strip()]
    tokens = load_tokens(args.tokens_file)
    app = build_app(names, host=args.host, root=Path(args.root) if args.root else None, tokens=tokens)
    auth = "bearer tokens required" if tokens else "no auth (loopback only)"
    base = f"http://{args.host}:{args.port}"
    print(f"cadre up: {', '.join(f'{base}/{n}/mcp' for n in names)}; {base}/healthz; {auth}", file=sys.stderr)
    if not is_loopback(args.host):
        print("cadre up: put TLS in front of this port (a load balancer or reverse proxy)", file=sys.stderr)
    # sse-starlette ends every open SSE response at the first SIGTERM, which would cut off in-flight tool
    # calls; instead uvicorn drains them for up to --grace seconds, then cancels what is left.
    from sse_starlette.sse import AppStatus

    AppStatus.disable_automatic_graceful_drain()
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=args.grace, lifespan="on"
    )
    uvicorn.Server(config).run()
    return 0
