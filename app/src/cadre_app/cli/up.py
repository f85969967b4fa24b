"""`cadre up`: serve the servers over streamable HTTP until SIGTERM or Ctrl-C."""

from __future__ import annotations

import errno
import functools
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadre_app.tokens import MIN_TOKEN_CHARS, hash_token, load_tokens
from cadre_app.up import build_app, is_loopback
from cadre_core.errors import CadreError

if TYPE_CHECKING:
    from cadre_core.config import LoadedConfig


def served_roots(args: Any, loaded: LoadedConfig | None = None) -> list[Path]:
    """The workspaces to serve: every `--root`, else `[up] roots` from cadre.toml (relative to the file that
    sets them), else the current directory."""
    given = [*([args.root] if args.root else []), *(args.up_roots or [])]
    if given:
        return [Path(p).expanduser() for p in given]
    if loaded is None:
        from cadre_core.config import load_config

        loaded = load_config()
    source = Path(loaded.source_of(("up", "roots")))
    base = source.parent if source.is_file() else Path.cwd()
    return [base / Path(p).expanduser() for p in loaded.config.up.roots] or [Path.cwd()]


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), as uvicorn would bind it, so a busy port fails before any banner."""
    bare = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bare, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CadreError(
                f"port {port} on {host} is already in use (another `cadre up`?); stop that process or pick "
                "another port with --port N"
            ) from None
        raise CadreError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port") from None
    return sock


def prepare(args: Any) -> tuple[Any, list[str], str]:
    """The app `args` ask for, the server names, and how it signs users in (for the banner). Every worker
    builds its app here, so each applies the same checks as the parent that validated them first."""
    from cadre_core.config import load_config

    names = [s.strip().removeprefix("cadre-") for s in args.servers.split(",") if s.strip()]
    tokens = load_tokens(args.tokens_file)
    loaded = load_config()
    auth_config = loaded.config.up.auth
    app = build_app(names, host=args.host, roots=served_roots(args, loaded), tokens=tokens, auth=auth_config)
    return app, names, sign_in(bool(tokens), auth_config.issuer)


def print_token_hash() -> int:
    """`--hash-token`: the sha256:HEX line for a token read from stdin (a prompt on a terminal; never argv,
    which other users can see in `ps`)."""
    if sys.stdin.isatty():
        import getpass

        token = getpass.getpass("token: ")
    else:
        token = sys.stdin.readline()
    token = token.strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise CadreError(f"a bearer token must be at least {MIN_TOKEN_CHARS} characters; "
                         "generate one with `openssl rand -hex 32`")  # fmt: skip
    print(hash_token(token))
    return 0


def sign_in(tokens: bool, issuer: str | None) -> str:
    """What the banner says about sign-in."""
    ways = [*(["bearer tokens"] if tokens else []), *([f"JWTs from {issuer}"] if issuer else [])]
    return " or ".join(ways) + " required" if ways else "no auth (loopback only)"


def run(args: Any) -> int:
    if args.hash_token:
        return print_token_hash()
    import uvicorn

    from cadre_core.logs import configure_logging

    configure_logging(args.log_level)
    app, names, auth = prepare(args)
    sock = bind(args.host, args.port)
    bare = args.host.strip("[]")
    base = f"http://{f'[{bare}]' if ':' in bare else bare}:{sock.getsockname()[1]}"
    workers = f"; {args.workers} worker processes" if args.workers > 1 else ""
    print(f"cadre up: {', '.join(f'{base}/{n}/mcp' for n in names)}; {base}/healthz; {auth}{workers}", file=sys.stderr)
    if not is_loopback(args.host):
        print("cadre up: put TLS in front of this port (a load balancer or reverse proxy)", file=sys.stderr)
    _keep_sse_open_on_sigterm()
    options = {"host": args.host, "port": args.port, "log_level": "warning", "timeout_graceful_shutdown": args.grace,
               "lifespan": "on"}  # fmt: skip
    if args.workers > 1:
        from cadre_app.workers import Workers

        del app  # each worker builds its own; this one only proved that `args` are valid
        config = uvicorn.Config(functools.partial(worker_app, args), factory=True, workers=args.workers, **options)
        supervisor = Workers(config, sockets=[sock])
        supervisor.run()
        return 1 if supervisor.failed else 0
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
    return 0


def worker_app(args: Any) -> Any:
    """The app of one `--workers` process (started by uvicorn's supervisor, which pickles this call)."""
    from cadre_core.envfile import load_env_file
    from cadre_core.logs import configure_logging

    load_env_file()  # as `cadre`'s main does before `run`
    configure_logging(args.log_level)
    _keep_sse_open_on_sigterm()
    return prepare(args)[0]


def _keep_sse_open_on_sigterm() -> None:
    """sse-starlette ends every open SSE response at the first SIGTERM, which would cut off in-flight tool
    calls; instead uvicorn drains them for up to --grace seconds, then cancels what is left."""
    from sse_starlette.sse import AppStatus

    AppStatus.disable_automatic_graceful_drain()
