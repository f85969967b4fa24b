"""OAuth 2.1 resource-server mode of `cadre up` (`[up.auth]`): Bearer JWTs from the team's identity provider.

A token is valid when its signature verifies with a key from the provider's JWKS (PyJWT's `PyJWKClient`:
the set is cached for 5 minutes, and a token naming an unknown `kid` refetches it at most once per
`jwks_refresh_s`, so a rotated key is picked up and a flood of made-up kids costs one fetch), with an
accepted public-key algorithm (never `none` or HMAC), `exp` not passed and `nbf` reached (30 s leeway),
`iss` equal to the issuer and `aud` containing the audience, as the MCP authorization spec asks of a
resource server (modelcontextprotocol.io/specification, Authorization: "Token Handling", audience per
RFC 8707). The user is the `user_claim` claim.

Clients discover the provider from RFC 9728 protected-resource metadata, served here at
`/.well-known/oauth-protected-resource` plus the resource's path (RFC 9728 §3.1: `/oracle/mcp` has its
document at `/.well-known/oauth-protected-resource/oracle/mcp`, which MCP clients try first) and at the
bare well-known path (the root resource, their fallback); each 401 names it (`resource_metadata`, §5.1).
PyJWT ships with the mcp SDK; it is imported only when `[up.auth]` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cadre_core.config import UpAuthConfig

LEEWAY_S = 30
JWKS_CACHE_S = 300
JWKS_TIMEOUT_S = 5
MAX_USER_CHARS = 256
WELL_KNOWN = "/.well-known/oauth-protected-resource"


class Refused(Exception):
    """A request's bearer credentials were refused. `description` is the RFC 6750 `error_description` (plain
    words, never the token), None when no credentials came (§3.1: then no error code is sent); `status` is 401,
    or 503 when the provider's keys could not be fetched."""

    def __init__(self, description: str | None, status: int = 401):
        super().__init__(description or "no bearer token")
        self.description = description
        self.status = status


def _why(exc: Exception) -> str:
    """What was wrong with a token, from PyJWT's exception (most specific class first)."""
    import jwt

    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token has no {exc.claim} claim"
    reasons: list[tuple[type[Exception], str]] = [
        (jwt.ExpiredSignatureError, "the token has expired"),
        (jwt.ImmatureSignatureError, "the token is not valid yet"),
        (jwt.InvalidAudienceError, "the token was issued for another audience"),
        (jwt.InvalidIssuerError, "the token was issued by another issuer"),
        (jwt.InvalidSignatureError, "the token signature does not verify"),
        (jwt.InvalidAlgorithmError, "the token signature algorithm is not accepted"),
        (jwt.DecodeError, "the token is not a well-formed JWT"),
    ]
    return next((why for kind, why in reasons if isinstance(exc, kind)), "the token is not valid")


class JWTVerifier:
    """Checks Bearer JWTs against `[up.auth]` and names their user."""

    def __init__(self, config: UpAuthConfig):
        import jwt

        assert config.jwks_url is not None
        self.config = config
        self.keys = jwt.PyJWKClient(
            config.jwks_url, lifespan=JWKS_CACHE_S, timeout=JWKS_TIMEOUT_S, cooldown_duration=config.jwks_refresh_s
        )

    async def user_of(self, token: str) -> str:
        """The user a valid token names; raises `Refused` saying what is wrong."""
        import anyio
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Refused(_why(exc)) from None
        if header.get("alg") not in self.config.algorithms:  # `none` and HS256 end here, before any key is looked up
            raise Refused(
                f"the token signature algorithm is not accepted; use one of {', '.join(self.config.algorithms)}"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Refused("the token names no signing key (kid)")
        try:  # PyJWKClient fetches with urllib: off the event loop, unless the cached set has the key
            key = self.cached_key(kid) or await anyio.to_thread.run_sync(self.keys.get_signing_key, kid)
        except jwt.PyJWKClientConnectionError:
            raise Refused("the identity provider's signing keys cannot be fetched; try again shortly", 503) from None
        except (jwt.PyJWKClientError, jwt.PyJWKSetError):
            raise Refused("the token is signed by a key the identity provider does not publish") from None
        try:
            claims = jwt.decode(
                token, key, algorithms=self.config.algorithms, audience=self.config.audience,
                issuer=self.config.issuer, leeway=LEEWAY_S, options={"require": ["exp", "iss", "aud"]},
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            raise Refused(_why(exc)) from None
        user = claims.get(self.config.user_claim)
        if not isinstance(user, str) or not user.strip():
            raise Refused(f"the token has no {self.config.user_claim} claim naming the user")
        if len(user) > MAX_USER_CHARS or not user.isprintable():  # it goes into ledger rows and logs as is
            raise Refused(f"the token's {self.config.user_claim} claim is not a usable user name")
        return user.strip()

    def cached_key(self, kid: str) -> Any:
        """The signing key `kid` names in the cached, unexpired JWKS (the keys `PyJWKClient` would pick), or None."""
        cache = self.keys.jwk_set_cache
        jwk_set = cache.get() if cache is not None else None
        if jwk_set is None:
            return None
        return self.keys.match_kid([k for k in jwk_set.keys if k.public_key_use in ("sig", None)], kid)


def resource_base(scope: dict[str, Any], config: UpAuthConfig) -> str:
    """This server's public origin: `[up.auth] resource`, else the request's scheme and Host."""
    if config.resource:
        return config.resource.rstrip("/")
    from starlette.requests import Request

    return str(Request(scope).base_url).rstrip("/")


def metadata_url(scope: dict[str, Any], config: UpAuthConfig, resources: frozenset[str]) -> str:
    """The RFC 9728 metadata URL for the resource a request went to (the root one for any other path)."""
    path = scope.get("path", "")
    return resource_base(scope, config) + WELL_KNOWN + (path if path in resources else "")


def metadata_routes(config: UpAuthConfig, resources: frozenset[str]) -> list[Any]:
    """GET routes for the RFC 9728 documents: one per served resource path (`/oracle/mcp`) and the root one.

    The document is the SDK's `ProtectedResourceMetadata`; its `resource` is identical to the URL the client
    derived the metadata URL from (§3.3), and `authorization_servers` names the issuer."""
    from mcp.server.auth.json_response import PydanticJSONResponse
    from mcp.server.auth.routes import cors_middleware
    from mcp.shared.auth import ProtectedResourceMetadata
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    assert config.issuer is not None
    issuer = config.issuer

    async def metadata(request: Any) -> Any:
        path = "/" + request.path_params["path"] if "path" in request.path_params else ""
        if path and path not in resources:
            return JSONResponse({"error": "not_found", "detail": f"serving {', '.join(sorted(resources))}"}, 404)
        document = ProtectedResourceMetadata.model_validate(  # validating keeps a bare origin without a "/"
            {"resource": resource_base(request.scope, config) + path, "authorization_servers": [issuer],
             "resource_name": "Cadre"}
        )  # fmt: skip
        return PydanticJSONResponse(content=document, headers={"Cache-Control": "public, max-age=3600"})

    endpoint = cors_middleware(metadata, ["GET", "OPTIONS"])  # browser-based clients (MCP Inspector) read it too
    return [Route(WELL_KNOWN, endpoint, methods=["GET", "OPTIONS"]),
            Route(WELL_KNOWN + "/{path:path}", endpoint, methods=["GET", "OPTIONS"])]  # fmt: skip
