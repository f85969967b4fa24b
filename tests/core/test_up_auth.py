"""`cadre up`'s bearer check at the ASGI layer: nothing but /healthz and lifespan reaches the app without a token."""

import pytest

from cadre_app.tokens import StaticTokens, parse_entry
from cadre_app.up import BearerAuth

pytestmark = pytest.mark.anyio
TOKEN = "t0ken-" + "a" * 26


async def call(scope: dict) -> tuple[list[dict], list[dict]]:
    """Run BearerAuth over an app that records the scopes it gets; returns (scopes reached, messages sent)."""
    reached: list[dict] = []
    sent: list[dict] = []

    async def app(scope, receive, send):
        reached.append(scope)

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    await BearerAuth(app, StaticTokens((parse_entry(TOKEN, "test"),)))(scope, receive, send)
    return reached, sent


@pytest.mark.parametrize("path", ["/search/mcp", "/healthz"])
async def test_a_websocket_without_a_token_never_reaches_the_app(path):
    # the ASGI spec's websocket scope; a close before accept is sent to the client as HTTP 403 by the server
    reached, sent = await call({"type": "websocket", "path": path, "headers": []})
    assert reached == []
    assert sent == [{"type": "websocket.close", "code": 1008}]


async def test_a_websocket_with_the_token_and_lifespan_pass():
    header = [(b"authorization", f"Bearer {TOKEN}".encode())]
    reached, _ = await call({"type": "websocket", "path": "/search/mcp", "headers": header})
    assert len(reached) == 1
    reached, _ = await call({"type": "lifespan"})
    assert len(reached) == 1
