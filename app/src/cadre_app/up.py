"""`cadre up`: every server over streamable HTTP in one process, stateless, with bearer auth off loopback."""

from __future__ import annotations

import contextlib
import hmac
import importlib
import ipaddress
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cadre_core import telemetry
from cadre_core.errors import CadreError
from cadre_core.servers import installed

TOKENS_ENV = "CADRE_TOKENS"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_tokens(tokens_file: Path | None) -> list[str]:
    """Bearer tokens from a file (one per line, # comments) and the CADRE_TOKENS env var (comma-separated)."""
    tokens = [t.strip() for t in os.environ.get(TOKENS_ENV, "").split(",") if t.strip()]
    if tokens_file is not None:
        try:
            lines = tokens_file.read_text("utf-8").splitlines()
        except OSError as exc:
            raise CadreError(f"cannot read the tokens file {tokens_file}: {exc.strerror}") from exc
        tokens += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise CadreError("every bearer token must be at least 16 characters; generate one with `openssl rand -hex 32`")
    return tokens


class BearerAuth:
    """ASGI middleware: every request but /healthz (websockets included) needs `Authorization: Bearer <token>`."""

    def __init__(self, app: Any, tokens: list[str]):
        self.app = app
        self.tokens = [t.encode() for t in tokens]

    def allowed(self, header: bytes) -> bool:
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"bearer" or not value:
            return False
        ok = False
        for token in self.tokens:  # compare with every token, in constant time
            ok |= hmac.compare_digest(value.strip(), token)
        return ok

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and scope["path"] == "/healthz"):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        if self.allowed(header):
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket (or any other scope): closed before accept, which is a 403
            await send({"type": "websocket.close", "code": 1008})
            return
        body = b'{"error": "unauthorized", "detail": "send Authorization: Bearer <token>"}'
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="cadre", error="invalid_token"')]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def host_checking(host: str) -> Any:
    """The SDK's Host/Origin check (DNS-rebinding protection) for a loopback bind, else None.

    Allowed: the bound address, `localhost`, `127.0.0.1` and `[::1]`, each with and without a port, and
    `http://` origins of the same; anything else gets 421 (Host) or 403 (Origin) from the SDK."""
    if not is_loopback(host):
        return None
    from mcp.server.transport_security import TransportSecuritySettings

    bare = host.strip("[]")
    bound = f"[{bare}]" if ":" in bare else bare
    names = list(dict.fromkeys([bound, "localhost", "127.0.0.1", "[::1]"]))
    hosts = [form for name in names for form in (name, f"{name}:*")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}" for h in hosts],
    )


def build_app(names: list[str], *, host: str, roots: list[Path], tokens: list[str]) -> Any:
    """A Starlette app with /<server>/mcp for each server and /healthz, serving the workspaces `roots`
    (the first is the default). A bind without tokens must have Host/Origin checking on."""
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from cadre_core.workspace import ServedWorkspaces

    known = installed()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CadreError(f"unknown server(s) {', '.join(unknown)}; use {', '.join(known)}")
    security = host_checking(host)
    if security is None and not tokens:
        raise CadreError(
            f"binding {host} exposes the servers beyond this machine, so bearer tokens are required: "
            f"set {TOKENS_ENV}=<token> or pass --tokens-file FILE"
        )
    served = ServedWorkspaces(roots, hint="pass `cadre up --root DIR` (repeatable) or set `[up] roots` in cadre.toml")
    security = security or TransportSecuritySettings(enable_dns_rebinding_protection=False)
    telemetry.setup("cadre-up")
    servers = {}
    for name in names:
        server = importlib.import_module(known[name].module).create_server(root=served.workspaces[0].path)
        server.kit.serve_workspaces(served)
        servers[name] = server
    mounts = [
        Mount(f"/{name}", app=server.streamable_http_app(
            streamable_http_path="/mcp", stateless_http=True, json_response=False,
            transport_security=security, host=host))
        for name, server in servers.items()
    ]  # fmt: skip

    async def healthz(request: Any) -> Any:
        return JSONResponse({"status": "ok"})  # nothing more: /healthz answers without a token

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(telemetry.shutdown)
            for server in servers.values():
                await stack.enter_async_context(server.session_manager.run())
            yield

    app = Starlette(routes=[Route("/healthz", healthz), *mounts], lifespan=lifespan)
    return BearerAuth(app, tokens) if tokens else app
