"""The one small interface every provider implements, and the types it speaks."""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Effort = Literal["low", "medium", "high"]
FinishReason = Literal["stop", "length", "tool_use", "refusal", "content_filter"]
Role = Literal["user", "assistant", "tool"]
DEFAULT_MAX_OUTPUT_TOKENS = 8192
CHARS_PER_TOKEN = 3.5
"""Conservative local estimate; real tokenizers average about 4 for English and code."""


@dataclass(frozen=True)
class ToolCall:
    """A model's request to run a tool."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolDefinition:
    """A tool the model may call; `parameters` is a JSON schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Attachment:
    """An image or document sent with a user turn: raw bytes and their media type (`image/png`,
    `application/pdf`, ...). `tokens` is the caller's estimate of what the vendor counts for it."""

    data: bytes = field(repr=False)
    media_type: str
    name: str = ""
    tokens: int = 0
    size: tuple[int, int] | None = None
    """(width, height) in pixels of an image, when the caller read it (to fit it to a vendor's limits)."""

    @property
    def base64(self) -> str:
        import base64

        return base64.b64encode(self.data).decode("ascii")

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


@dataclass
class Message:
    """One turn. `tool` messages answer the call named by `tool_call_id`."""

    role: Role
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False
    replay: dict[str, Any] | None = None
    """Provider-native form of an assistant turn (thinking signatures, reasoning
    items), replayed verbatim when the next request goes to the same provider."""
    attachments: list[Attachment] = field(default_factory=list)
    """Images and documents sent after the text of a user turn."""

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", text)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: list[ToolCall] | None = None) -> Message:
        return cls("assistant", text, list(tool_calls or []))

    @classmethod
    def tool_result(cls, call: ToolCall, text: str, *, is_error: bool = False) -> Message:
        return cls("tool", text, tool_call_id=call.id, tool_name=call.name, is_error=is_error)


@dataclass
class ModelRequest:
    """What a caller asks of a model."""

    messages: list[Message]
    system: str | None = None
    output_schema: dict[str, Any] | None = None
    schema_name: str = "answer"
    tools: list[ToolDefinition] = field(default_factory=list)
    tools_allowed: bool = True
    """False keeps `tools` declared (a history with tool calls needs them) but forbids new calls."""
    max_output_tokens: int | None = None
    """None means the candidate's setting (or 8192 outside the router)."""
    image_size: str | None = None
    """For an image model: the size of the image to generate, `WIDTHxHEIGHT`."""
    effort: Effort | None = None
    validate: Callable[[ModelResponse], Any] | None = field(default=None, compare=False, repr=False)
    """Checks a final answer (one without tool calls); raises `OutputInvalidError`. The router
    then asks the same model once to repair it, and falls back if the repair fails too."""
    adapt: Callable[[ModelRequest, str], ModelRequest] | None = field(default=None, compare=False, repr=False)
    """Fits the request, as sent, to one provider's input limits (images downscaled, say): the router calls
    it with the provider's name for each candidate, so a fallback to another vendor refits from the
    original. Raises `InputLimitError` when that provider cannot take the request (the candidate is skipped)."""

    @property
    def output_limit(self) -> int:
        return self.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS

    def prompt_chars(self) -> int:
        """Characters of everything sent, for a local token estimate."""
        total = len(self.system or "")
        for m in self.messages:
            total += len(m.text) + sum(len(json.dumps(c.arguments)) + len(c.name) for c in m.tool_calls)
        for t in self.tools:
            total += len(t.name) + len(t.description) + len(json.dumps(t.parameters))
        if self.output_schema:
            total += len(json.dumps(self.output_schema))
        return total

    def estimated_input_tokens(self) -> int:
        attached = sum(a.tokens for m in self.messages for a in m.attachments)
        return int(self.prompt_chars() / CHARS_PER_TOKEN) + 8 * len(self.messages) + attached


@dataclass
class Usage:
    """Normalised token counts. `input_tokens` includes cache reads and writes;
    `output_tokens` includes reasoning."""

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class ModelResponse:
    """A model's answer: text, structured output or tool calls."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    output: Any = None
    """Parsed JSON when the request had `output_schema` and the text parsed, else None."""
    response_id: str | None = None
    cost_usd: float | None = None
    """Filled in by the router from the price catalog, unless `billing` says the provider reported it."""
    billing: Literal["api", "subscription", "reported"] = "api"
    """`api`: priced from the catalog; `subscription`: a vendor plan, cost null; `reported`: `cost_usd` as
    the provider (a CLI agent) reported it."""
    ledger_note: str | None = None
    """Added to the ledger row's message (a CLI agent's billing, and that writes were allowed)."""
    replay: dict[str, Any] | None = None
    images: list[Attachment] = field(default_factory=list)
    """Images an image model generated."""
    warnings: list[str] = field(default_factory=list)
    """Set by the router when an off-the-rails detector fired but the answer was kept."""

    def to_message(self) -> Message:
        """This answer as the assistant turn of a continuing conversation."""
        return Message("assistant", self.text, list(self.tool_calls), replay=self.replay)

    def parse_output(self, request: ModelRequest) -> ModelResponse:
        """Fill `output` from the text when a schema was asked for."""
        if request.output_schema is not None and self.output is None and self.text.strip():
            self.output = parse_json_text(self.text)
        return self


def parse_json_text(text: str) -> Any:
    """JSON from a model's text, or None. Lenient where that is safe, since the answer is validated after:
    raw control characters (newlines) inside strings, a ```json fence, prose before or after one object.
    Nesting too deep for the decoder (RecursionError) is no JSON either."""
    body = text.strip()
    if fence := _FENCE.search(body):
        body = fence.group(1).strip()
    decoder = json.JSONDecoder(strict=False)
    try:
        return decoder.decode(body)
    except (ValueError, RecursionError):
        pass
    start = body.find("{")
    for _ in range(_OBJECT_STARTS_TRIED):
        if start < 0:
            break
        try:
            value, _end = decoder.raw_decode(body, start)
        except (ValueError, RecursionError):
            start = body.find("{", start + 1)
            continue
        return value if isinstance(value, dict) else None
    return None


_FENCE = re.compile(r"```[a-zA-Z]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_OBJECT_STARTS_TRIED = 8
"""How many `{` in prose are tried as the start of the object (bounded: each try may scan the rest)."""


class Model(ABC):
    """A model behind one async call. Subclasses set `provider` and the flags."""

    provider: str = ""
    supports_tools: bool = True
    supports_output_schema: bool = True
    key_env: str = ""
    """Env var the key comes from, named in auth errors."""

    def __init__(self, model_name: str):
        self.model_name = model_name

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model_name}"

    @abstractmethod
    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one request; raise a `cadre_core.errors.ModelError` on failure."""

    def require_key(self, key: str | None) -> str:
        """`key`, or a `MissingKeyError` naming the env var to set."""
        if not key:
            from cadre_core.errors import MissingKeyError

            raise MissingKeyError(provider=self.provider, env_var=self.key_env, model=self.model_name)
        return key

    async def prepare(self) -> None:  # noqa: B027 - optional hook
        """Load what a request needs (SDK imports, the client) so a time-out measures only the call."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release network clients."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class ProviderModel(Model):
    """A vendor API reached over HTTP with a key; the SDK client is built on first use."""

    sdk_modules: tuple[str, ...] = ()
    """Modules the client needs; `prepare` imports them off the event loop (`anthropic` takes seconds)."""
    warm_reply: dict[str, Any] | None = None
    """A minimal successful reply body. `prepare` sends one request to it in-process (never the network)
    so the SDK builds its lazy pydantic types (0.1-0.4 s on first use) before a timed call."""

    def __init__(
        self,
        model_name: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 900.0,
        http_client: Any = None,
        key_env: str | None = None,
    ):
        super().__init__(model_name)
        self.key_env = key_env or self.key_env
        self.api_key, self.base_url, self.timeout_s, self.http_client = api_key, base_url, timeout_s, http_client
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.make_client(self.require_key(self.api_key))
        return self._client

    async def prepare(self) -> None:
        """Import and warm up the SDK in a worker thread, then build the client; raises `MissingKeyError`
        without a key. Concurrent first calls wait for one load: none sees a half-imported module."""
        if self._client is not None:
            return
        if type(self) not in _LOADED:
            import anyio.to_thread

            await anyio.to_thread.run_sync(self._load)
        _ = self.client

    def _load(self) -> None:
        with _LOAD_LOCKS.setdefault(type(self), threading.Lock()):
            if type(self) in _LOADED:
                return
            for name in self.sdk_modules:
                importlib.import_module(name)
            if self.warm_reply is not None:
                with contextlib.suppress(Exception):  # best effort: else the first real call builds the types
                    _warm_up(self)
            _LOADED.add(type(self))

    @abstractmethod
    def make_client(self, api_key: str) -> Any:
        """The SDK's async client, with SDK retries off (the router owns retries)."""


_LOADED: set[type] = set()
"""Provider classes whose SDK is imported and warmed up."""
_LOAD_LOCKS: dict[type, threading.Lock] = {}


def _warm_up(model: ProviderModel) -> None:
    """One request with a tool and an output schema to `model.warm_reply`, through a mock transport,
    on a private event loop (this runs in a worker thread)."""
    import anyio
    import httpx2

    reply = model.warm_reply
    request = ModelRequest(
        [Message.user("warm-up")],
        output_schema={"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        tools=[ToolDefinition("t", "warm-up", {"type": "object", "properties": {}})],
        max_output_tokens=16,
    )

    async def once() -> None:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda _: httpx2.Response(200, json=reply)))
        try:
            await type(model)(model.model_name, api_key="warm-up", http_client=http).request(request)
        finally:
            await http.aclose()

    anyio.run(once)
