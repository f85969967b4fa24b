"""`cadre up`: every server over streamable HTTP in one process, stateless, with bearer auth off loopback."""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from cadre_app.oauth import WELL_KNOWN, JWTVerifier, Refused, metadata_routes, metadata_url
from cadre_app.tokens import TOKENS_ENV, StaticTokens
from cadre_core import telemetry
from cadre_core.errors import CadreError
from cadre_core.identity import acting_as
from cadre_core.servers import installed

if TYPE_CHECKING:
    from cadre_core.config import UpAuthConfig

log = structlog.get_logger("cadre.up")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """ASGI middleware: every request but /healthz and the sign-in metadata (websockets included) needs
    `Authorization: Bearer <token>`, a static token or (with `[up.auth]`) a JWT, and then runs as the token's
    user (`acting_as`), so every tool handler and store downstream sees `current_user()`; the SDK hands the
    request's contextvars to the handler task it spawns (`JSONRPCDispatcher._spawn`).

    Not the SDK's `RequireAuthMiddleware`: that one sends the same description for every refusal, an error
    code even when no token came, and knows no user to act as."""

    def __init__(
        self, app: Any, tokens: StaticTokens, jwt: JWTVerifier | None = None, resources: frozenset[str] = frozenset()
    ):
        self.app = app
        self.tokens = tokens
        self.jwt = jwt
        self.resources = resources

    async def user_of(self, header: bytes) -> str | None:
        """The user the Authorization header's token names (None: a static token without one); raises `Refused`."""
        scheme, _, value = header.partition(b" ")
        token = value.strip().decode("latin-1")
        if scheme.lower() != b"bearer" or not token:
            raise Refused(None)
        if (entry := self.tokens.match(token)) is not None:
            return entry.user
        if self.jwt is None:
            raise Refused("unknown token")
        return await self.jwt.user_of(token)

    def public(self, scope: dict[str, Any]) -> bool:
        path = scope.get("path", "")
        return scope["type"] == "http" and (
            path == "/healthz" or (self.jwt is not None and (path + "/").startswith(WELL_KNOWN + "/"))
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" or self.public(scope):
            await self.app(scope, receive, send)
            return
        try:
            user = await self.user_of(dict(scope.get("headers") or []).get(b"authorization", b""))
        except Refused as refused:
            await self.refuse(scope, send, refused)
            return
        named = {"user": user} if user else {}
        with acting_as(user), structlog.contextvars.bound_contextvars(**named):  # log lines name the user too
            await self.app(scope, receive, send)

    async def refuse(self, scope: dict[str, Any], send: Any, refused: Refused) -> None:
        """401 with an RFC 6750 §3 challenge (plus RFC 9728 §5.1 `resource_metadata` in JWT mode), or 503."""
        (log.warning if refused.status == 503 else log.info)(
            "sign-in refused", reason=str(refused), path=scope.get("path")
        )
        if scope["type"] != "http":  # a websocket (or any other scope): closed before accept, which is a 403
            await send({"type": "websocket.close", "code": 1008})
            return
        challenge = ['realm="cadre"']
        if self.jwt is not None:
            challenge.append(f'resource_metadata="{metadata_url(scope, self.jwt.config, self.resources)}"')
        description = (refused.description or "").replace('"', "'").replace("\\", "/")
        if refused.description is not None:
            challenge += ['error="invalid_token"', f'error_description="{description}"']
        error = {401: "invalid_token" if refused.description else "unauthorized", 503: "temporarily_unavailable"}
        detail = description or "send Authorization: Bearer <token>"
        body = json.dumps({"error": error[refused.status], "error_description": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if refused.status == 401:
            headers.append((b"www-authenticate", ("Bearer " + ", ".join(challenge)).encode()))
        else:
            headers.append((b"retry-after", b"30"))
        await send({"type": "http.response.start", "status": refused.status, "headers": headers})
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


def build_app(
    names: list[str], *, host: str, roots: list[Path], tokens: StaticTokens, auth: UpAuthConfig | None = None
) -> Any:
    """A Starlette app with /<server>/mcp for each server and /healthz, serving the workspaces `roots`
    (the first is the default), signing in with `tokens` and, when `auth` is enabled, Bearer JWTs (plus the
    RFC 9728 metadata routes). A bind with neither must have Host/Origin checking on."""
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
    jwt = JWTVerifier(auth) if auth is not None and auth.enabled else None
    if security is None and not tokens and jwt is None:
        raise CadreError(
            f"binding {host} exposes the servers beyond this machine, so bearer tokens are required: "
            f"set {TOKENS_ENV}=<token>, pass --tokens-file FILE or set [up.auth] in cadre.toml"
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

    resources = frozenset(f"/{name}/mcp" for name in servers)
    metadata = metadata_routes(jwt.config, resources) if jwt is not None else []
    app = Starlette(routes=[Route("/healthz", healthz), *metadata, *mounts], lifespan=lifespan)
    return BearerAuth(app, tokens, jwt, resources) if tokens or jwt is not None else app
