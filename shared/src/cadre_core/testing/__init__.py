"""Test helpers that ship with the library: fake HTTP for provider SDKs, a network guard,
the fakes `TestModel` / `FunctionModel`, and a server wired to fake models."""

from __future__ import annotations

import _socket
import ipaddress
import json
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadre_core.models.base import Model
from cadre_core.models.test import FunctionModel, TestModel

if TYPE_CHECKING:
    from cadre_core.config import CadreConfig, Candidate
    from cadre_core.ledger import Ledger

__all__ = [
    "FunctionModel",
    "NetworkBlockedError",
    "RecordingHandler",
    "TestModel",
    "UnexpectedRequestError",
    "block_network",
    "mock_http_client",
    "wire_fake_models",
]


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a non-loopback address."""


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple):
        host = address[0]
    else:
        return True  # AF_UNIX paths
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def block_network() -> Iterator[None]:
    """Refuse every socket connection that is not to loopback, and every DNS lookup of other hosts."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guard(address: Any) -> None:
        if not _is_loopback(address):
            raise NetworkBlockedError(f"tests may not reach the network ({address!r}); use a mock transport")

    def connect(self: _socket.socket, address: Any) -> None:
        guard(address)
        return real_connect(self, address)

    def connect_ex(self: _socket.socket, address: Any) -> int:
        guard(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (None, "localhost") and not _is_loopback((name, 0)):
            raise NetworkBlockedError(f"tests may not resolve {name!r}; use a mock transport")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex  # type: ignore[method-assign]  # the guard
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex  # type: ignore[method-assign]  # restore
        socket.getaddrinfo = real_getaddrinfo


class UnexpectedRequestError(BaseException):
    """A `RecordingHandler` got a request with no response queued for it.

    A BaseException, like pytest's own `fail()`: code under test catches `Exception` (SDKs turn it
    into a connection error, the router falls back), which would hide the extra request."""


class RecordingHandler:
    """A MockTransport handler that answers each request with the next queued response, in
    order, and records the requests. A request after the queue is empty raises
    `UnexpectedRequestError`, so a test sees every extra call.

    Each queued item is a `(status, json_body[, headers])` tuple, an `httpx2.Response`, an
    exception to raise, or a callable taking the request.
    """

    def __init__(self, *responses: Any):
        self.responses = list(responses)
        self.requests: list[Any] = []

    def queue(self, *responses: Any) -> RecordingHandler:
        self.responses.extend(responses)
        return self

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content or b"{}") for r in self.requests]

    def __call__(self, request: Any) -> Any:
        import httpx2

        self.requests.append(request)
        if not self.responses:
            raise UnexpectedRequestError(
                f"unexpected request {len(self.requests)}: {request.method} {request.url} (no response queued)"
            )
        item = self.responses.pop(0)
        if isinstance(item, BaseException):
            raise item
        if callable(item) and not isinstance(item, httpx2.Response):
            item = item(request)
        if isinstance(item, tuple):
            status, body, *rest = item
            headers = rest[0] if rest else {}
            if isinstance(body, str | bytes):
                return httpx2.Response(status, content=body, headers={"content-type": "application/json", **headers})
            return httpx2.Response(status, json=body, headers=headers)
        return item


def mock_http_client(handler: Callable[[Any], Any]) -> Any:
    """An `httpx2.AsyncClient` whose requests go to `handler` instead of the network."""
    import httpx2

    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


FakeModels = Model | Mapping[str, Model | None] | Callable[["Candidate", "CadreConfig"], Model]


def wire_fake_models(
    server: Any, models: FakeModels, *, config: CadreConfig, state: Path, **router_options: Any
) -> Ledger:
    """Give `server` (any Cadre MCP server) `config` and a router whose models are `models`, with its ledger,
    threads and jobs kept under `state`; returns the ledger. `router_options` go to `Router` (e.g. `sleep`).

    `models` is one model that answers every candidate, a dict by `provider:model` (any alias), or a
    `(candidate, config) -> Model` factory. Nothing reads keys or the network: the route's key checks still
    apply, so set the key env vars of the candidates that should run."""
    from cadre_core.ledger import Ledger
    from cadre_core.models.refs import model_key
    from cadre_core.router import Router
    from cadre_core.threads import ThreadStore

    if isinstance(models, Model):
        one = models
        factory: Callable[[Candidate, CadreConfig], Any] = lambda candidate, cfg: one  # noqa: E731
    elif isinstance(models, Mapping):
        by_key = {model_key(ref): model for ref, model in models.items()}
        factory = lambda candidate, cfg: by_key[model_key(candidate.model)]  # noqa: E731
    else:
        factory = models
    state.mkdir(parents=True, exist_ok=True)
    config.paths.jobs = state / "jobs.sqlite"
    ledger = Ledger(state / "ledger.sqlite")
    router = Router(config, ledger, model_factory=factory, **router_options)
    server.kit.use(config=config, ledger=ledger, threads=ThreadStore(state / "threads.sqlite"), router=router)
    return ledger
