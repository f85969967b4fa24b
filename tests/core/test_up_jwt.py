"""`cadre up` as an OAuth 2.1 resource server: Bearer JWTs checked against a loopback JWKS, the RFC 9728
metadata clients discover, and the 401 challenges (RFC 6750 §3, RFC 9728 §5.1) each refusal carries."""

import base64
import hashlib
import hmac
import json
import re
import threading
import time

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cadre_app.tokens import StaticTokens, parse_entry
from cadre_app.up import build_app
from cadre_core.config import UpAuthConfig
from tests.e2e.test_up import HEADERS, INIT
from tests.jwks import AUDIENCE, ISSUER, JWKSServer, claims, ec_key, rsa_key, sign

pytestmark = pytest.mark.anyio
TOKEN = "static-token-" + "s" * 20
RSA, EC, NEW = rsa_key("rsa-1"), ec_key("ec-1"), rsa_key("rsa-2")


@pytest.fixture
def idp():
    server = JWKSServer([RSA, EC]).start()
    yield server
    server.stop()


def auth_config(idp: JWKSServer, **extra) -> UpAuthConfig:
    return UpAuthConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.url, **extra)


@pytest.fixture
def app(idp, tmp_path):
    def make(**extra):
        tokens = StaticTokens((parse_entry(f"carol:{TOKEN}", "test"),))
        return build_app(["search"], host="0.0.0.0", roots=[tmp_path], tokens=tokens, auth=auth_config(idp, **extra))  # noqa: S104

    return make


async def post(app, token: str | None, path: str = "/search/mcp") -> httpx2.Response:
    headers = {**HEADERS, **({"authorization": f"Bearer {token}"} if token is not None else {})}
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://cadre.test") as client:
        return await client.post(path, json=INIT, headers=headers)


async def accepted(app, token: str) -> bool:
    """Whether `token` gets past sign-in: to a path no route serves, a passing request is a 404, not a 401."""
    response = await post(app, token, path="/no-such-route")
    assert response.status_code in (401, 404), response.text
    return response.status_code == 404


def challenge(response: httpx2.Response) -> dict[str, str]:
    """The Bearer challenge's auth-params (RFC 7235 §2.1 syntax, quoted values)."""
    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer"
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


METADATA = "https://cadre.test/.well-known/oauth-protected-resource/search/mcp"


@pytest.mark.parametrize(
    ("token", "description"),
    [
        (lambda: sign(RSA, claims(exp=int(time.time()) - 120)), "the token has expired"),
        (lambda: sign(RSA, claims(nbf=int(time.time()) + 600)), "the token is not valid yet"),
        (lambda: sign(EC, claims(aud="api://someone-else")), "the token was issued for another audience"),
        (lambda: sign(RSA, claims(iss="https://evil.example.com")), "the token was issued by another issuer"),
        (lambda: sign(RSA, {k: v for k, v in claims().items() if k != "exp"}), "the token has no exp claim"),
        (
            lambda: sign(RSA, {k: v for k, v in claims().items() if k != "sub"}),
            "the token has no sub claim naming the user",
        ),
        # signed by a key of the same kid that the provider never published
        (lambda: sign(rsa_key("rsa-1"), claims()), "the token signature does not verify"),
        # the payload swapped after signing
        (lambda: forge(sign(RSA, claims("alice")), claims("mallory")), "the token signature does not verify"),
        (lambda: jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa-1"}), "algorithm is not accepted"),
        # HS256 keyed with the published public key: the classic algorithm-confusion forgery
        (lambda: hs256_with_public_key(), "algorithm is not accepted"),
        (lambda: sign(rsa_key("unknown-kid"), claims()), "signed by a key the identity provider does not publish"),
        (lambda: "not.a.jwt", "the token is not a well-formed JWT"),
        (lambda: "x" * 40, "the token is not a well-formed JWT"),
    ],
)
async def test_a_bad_token_gets_401_with_a_challenge_that_says_why(app, token, description):
    response = await post(app(jwks_refresh_s=60), token())
    assert response.status_code == 401
    params = challenge(response)
    assert params["error"] == "invalid_token"
    assert description in params["error_description"]
    assert params["resource_metadata"] == METADATA
    assert response.json()["error"] == "invalid_token"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(token: str, payload: dict) -> str:
    """`token` with its payload swapped and its signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


def hs256_with_public_key() -> str:
    """An HS256 token keyed with the provider's published RSA public key (PEM), as a forger would make it."""
    pem = RSA.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
    return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


async def test_no_token_gets_a_challenge_without_an_error_code(app):
    # RFC 6750 §3.1: a request with no authentication information gets no error code
    response = await post(app(), None)
    assert response.status_code == 401
    assert challenge(response) == {"realm": "cadre", "resource_metadata": METADATA}
    other = await post(app(), None, path="/elsewhere")
    assert challenge(other)["resource_metadata"] == "https://cadre.test/.well-known/oauth-protected-resource"


async def test_valid_tokens_from_either_key_and_static_tokens_pass(app, idp):
    served = app()
    for token in (sign(RSA), sign(EC, claims("bob")), TOKEN):
        assert await accepted(served, token)
    assert idp.fetches == 1  # the JWKS was fetched once and cached


async def test_a_rotated_key_is_fetched_once_and_a_flood_of_unknown_kids_is_not(app, idp):
    served = app(jwks_refresh_s=0.5)
    made_up = [sign(ec_key(f"made-up-{n}")) for n in range(5)]
    assert await accepted(served, sign(RSA))
    idp.keys = [RSA, EC, NEW]  # the provider publishes a new key
    await anyio.sleep(0.6)
    assert await accepted(served, sign(NEW))  # unknown kid: one refetch finds it
    assert idp.fetches == 2
    for token in made_up:  # made-up kids within the cool-down: refused without a fetch each
        response = await post(served, token)
        assert "does not publish" in challenge(response)["error_description"]
    assert idp.fetches == 2


async def test_an_unreachable_jwks_is_a_503_not_a_401(app, idp):
    served = app()
    idp.stop()
    response = await post(served, sign(RSA))
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert "www-authenticate" not in response.headers


async def test_the_user_claim_is_configurable(app):
    served = app(user_claim="email")
    refused = await post(served, sign(RSA))
    assert "no email claim naming the user" in challenge(refused)["error_description"]
    odd = await post(served, sign(RSA, claims(email="alice\nINFO forged log line")))
    assert "email claim is not a usable user name" in challenge(odd)["error_description"]
    assert await accepted(served, sign(RSA, claims(email="alice@example.com")))


@pytest.mark.parametrize(
    ("path", "resource"),
    [("/search/mcp", "https://cadre.test/search/mcp"), ("", "https://cadre.test")],
)
async def test_protected_resource_metadata_is_served_without_a_token(app, path, resource):
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app()), base_url="https://cadre.test") as c:
        response = await c.get("/.well-known/oauth-protected-resource" + path)
        missing = await c.get("/.well-known/oauth-protected-resource/oracle/mcp")  # not served here
    assert response.status_code == 200
    document = response.json()
    # RFC 9728 §3.3: `resource` is the identifier the metadata URL was derived from; MCP: at least one server
    assert document["resource"] == resource
    assert document["authorization_servers"] == [ISSUER]
    assert document["bearer_methods_supported"] == ["header"]
    assert missing.status_code == 404


async def test_a_configured_public_url_wins_over_the_request_host(app):
    served = app(resource="https://cadre.example.com/")
    response = await post(served, None)
    assert challenge(response)["resource_metadata"] == (
        "https://cadre.example.com/.well-known/oauth-protected-resource/search/mcp"
    )


# The user a request authenticates as reaches the tool handler over real HTTP


@pytest.fixture
def probe_url(idp):
    """`cadre up`'s middleware over a tiny server whose `whoami` tool returns current_user(), on loopback."""
    import socket

    import uvicorn
    from mcp.server.mcpserver import MCPServer
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from cadre_app.oauth import JWTVerifier
    from cadre_app.up import BearerAuth
    from cadre_core.identity import current_user

    server = MCPServer("probe")

    @server.tool()
    async def whoami() -> str:
        return current_user() or "-"

    mcp_app = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True)
    inner = Starlette(routes=[Mount("/probe", mcp_app)], lifespan=lambda app: server.session_manager.run())
    tokens = StaticTokens((parse_entry(f"carol:{TOKEN}", "test"),))
    app = BearerAuth(inner, tokens, JWTVerifier(auth_config(idp)), frozenset({"/probe/mcp"}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/probe/mcp"
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_tool_call_runs_as_the_user_the_token_names(probe_url, mode):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def whoami(token: str) -> str:
        http = httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(probe_url, http_client=http), mode=mode) as client:
            result = await client.call_tool("whoami", {})
        return result.content[0].text

    assert await whoami(sign(RSA, claims("alice"))) == "alice"
    assert await whoami(sign(EC, claims("bob"))) == "bob"
    assert await whoami(TOKEN) == "carol"


def test_the_readme_sign_in_example_is_a_valid_config(tmp_path):
    import tomllib
    from pathlib import Path

    from cadre_core.config import load_config

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = re.search(r"```toml\n(\[up\.auth\].*?)```", readme, re.S)
    assert block is not None
    tomllib.loads(block.group(1))
    (tmp_path / "c.toml").write_text(block.group(1))
    auth = load_config(tmp_path, user_file=tmp_path / "c.toml").config.up.auth
    assert auth.enabled and auth.audience == ["api://cadre"] and auth.user_claim == "email"
