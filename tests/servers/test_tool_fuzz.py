"""Every tool of every server, fuzzed from its own inputSchema plus hostile values, through an in-memory
client wired to fake models. A call may fail, but only with a clear one-line-or-so error: the server
keeps answering, never says "internal error" or shows a traceback, and never echoes a long argument."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from cadre_core.models.test import TestModel
from cadre_core.testing import wire_fake_models
from cadre_librarian.library import Library
from cadre_librarian.server import create_server as librarian_server
from cadre_librarian.sources import NetworkError
from cadre_oracle.server import create_server as oracle_server
from cadre_search.server import create_server as search_server
from cadre_vision.server import create_server as vision_server
from tests.core.conftest import make_config
from tests.servers.conftest import make_repo
from tests.servers.librarian_env import make_env

ECHO_LIMIT = 200
MODELS = ["openai:gpt-5.2", "anthropic:claude-opus-4-5", "google:gemini-3-pro-preview"]
SETTINGS = settings(
    max_examples=40,
    derandomize=True,  # the same examples on every run
    database=None,
    deadline=None,  # one call may index a workspace; the test as a whole is bounded by max_examples
    suppress_health_check=list(HealthCheck),
)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_STRINGS = [
    "",
    " ",
    "A" * 1_000_000,  # a megabyte
    "x" * 5000,  # longer than PATH_MAX / NAME_MAX
    "a/" * 3000,
    "\x00",
    "src/\x00/etc/passwd",
    "../../etc/passwd",
    "/etc/passwd",
    "/proc/self/environ",
    "~",
    "~nosuchuser_cadre/x",
    "-",
    "--output=/tmp/cadre-fuzz",
    "-–option",
    "--upload-pack=touch /tmp/cadre-fuzz",
    "HEAD~1",
    "HEAD..HEAD",
    ".env",
    "id_rsa",
    "file:///etc",
    "\ud800",  # a lone surrogate: valid in JSON, not encodable as UTF-8
    "é🙂\u202e\u200b",
    "🙂" * 2000,
    "\n" * 1000,
    "null",
    "[]",
    "{}",
    '{"a": 1}',
    "[" * 50_000,  # deeply nested JSON text
    "**/*",
    "[",
    "(?<!",
    "owner/repo",
    "a" * 41,
    "0" * 40,
]
HOSTILE_VALUES = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.just("ten"),
    st.just(_nested(200)),  # pydantic serializes at most 255 levels
    st.just({"nested": _nested(50)}),
    st.lists(st.sampled_from(HOSTILE_STRINGS), max_size=3),
    st.just(["x"] * 5000),
)


def valid_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the schema's types: the boundaries, and hostile strings (some over maxLength)."""
    if "anyOf" in schema:
        return st.one_of([valid_values(s) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        longest = schema.get("maxLength", 10_000)
        hostile = st.sampled_from(HOSTILE_STRINGS)  # some longer than maxLength: refused by validation
        return st.one_of(st.text(max_size=min(longest, 40)), hostile, hostile, st.just("x" * longest))
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "number":
        return st.floats(min_value=schema.get("minimum"), max_value=schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(valid_values(schema.get("items", {})), max_size=min(schema.get("maxItems", 5), 5))
    raise AssertionError(f"the fuzzer does not know schema {schema}; teach it")


def typed_arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Argument dicts whose values have the schema's types (hostile strings among them)."""
    props = {name: valid_values(s) for name, s in schema["properties"].items()}
    required = {name: props[name] for name in schema.get("required", [])}
    return st.fixed_dictionaries(required, optional={k: v for k, v in props.items() if k not in required})


def mistyped_arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Argument dicts with values of any type, required ones perhaps missing, an unknown one perhaps added."""
    props = {name: st.one_of(valid_values(s), HOSTILE_VALUES) for name, s in schema["properties"].items()}
    return st.fixed_dictionaries({}, optional={**props, "unknown_argument": HOSTILE_VALUES})


def long_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str) and len(value.strip()) > ECHO_LIMIT:
        yield value
    elif isinstance(value, list):
        for item in value[:10]:
            yield from long_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from long_strings(item)


def echoed(text: str, value: str) -> bool:
    """Whether `text` holds more than ECHO_LIMIT characters of `value` (from its start, middle or stripped)."""
    stripped = value.strip()
    middle = len(value) // 2
    windows = {value[: ECHO_LIMIT + 1], stripped[: ECHO_LIMIT + 1], value[middle : middle + ECHO_LIMIT + 1]}
    return any(len(w) > ECHO_LIMIT and w in text for w in windows)


def plain_models(server, config, state: Path):
    """`server` wired to fakes that give a plain answer from every model in MODELS."""
    models = {m: TestModel("A plain answer.", model_name=m) for m in MODELS}
    wire_fake_models(server, models, config=config, state=state)
    return server


def git_repo(root: Path) -> Path:
    make_repo(root)
    run = {"cwd": root, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run(["git", "add", "."], **run)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first"], **run)
    (root / "src/app/parser.py").write_text("def parse_header(line):\n    return line.split(':')\n")
    return root


def oracle(tmp_path: Path):
    server = oracle_server(root=git_repo(tmp_path / "oracle-ws"))
    return plain_models(server, make_config(oracle=MODELS, review=MODELS), tmp_path / "oracle")


class Offline:
    """GitHub, clones and web pages that are all unreachable (tests never touch the network)."""

    has_token = False

    def __getattr__(self, name: str):
        async def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise NetworkError("offline in this test; try an installed package")

        return unreachable

    def close(self) -> None:
        return None


def librarian(tmp_path: Path):
    library = Library(environ={}, github=Offline(), clones=Offline(), web=Offline())
    server = librarian_server(root=make_env(tmp_path / "librarian-ws"), library=library)
    return plain_models(server, make_config(librarian=MODELS), tmp_path / "librarian")


def search(tmp_path: Path):
    server = search_server(root=make_repo(tmp_path / "search-ws"))
    return plain_models(server, make_config(search=MODELS), tmp_path / "search")


def vision(tmp_path: Path):
    root = make_repo(tmp_path / "vision-ws")
    (root / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(8) + b"IHDR" + bytes([0, 0, 0, 2] * 2))
    server = vision_server(root=root)
    return plain_models(server, make_config(vision=MODELS), tmp_path / "vision")


@contextmanager
def connected(server) -> Iterator[tuple[Any, Client]]:
    """An in-memory client kept open across examples, driven from synchronous hypothesis code."""
    # no response cache: every list_tools reaches the server
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(server, cache=None)) as client,
    ):
        yield portal, client


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # a failing megabyte argument's repr
@pytest.mark.parametrize("build", [oracle, librarian, search, vision], ids=["oracle", "librarian", "search", "vision"])
def test_every_tool_survives_hostile_arguments(build, tmp_path, keys):
    with connected(build(tmp_path)) as (portal, client):
        tools = portal.call(client.list_tools).tools
        for tool in tools:
            for arguments in (typed_arguments, mistyped_arguments):
                fuzz_tool(portal, client, tool.name, arguments(tool.input_schema))


def fuzz_tool(portal, client: Client, name: str, arguments: st.SearchStrategy[dict[str, Any]]) -> None:
    @SETTINGS
    @given(args=arguments)
    def check(args: dict[str, Any]) -> None:
        result = portal.call(lambda: client.call_tool(name, args))
        text = "\n".join(getattr(block, "text", "") for block in result.content)
        if result.structured_content is not None:
            text += json.dumps(result.structured_content)
        shown = f"{name}({_short(args)}) -> {text[:500]!r}"
        assert "internal error" not in text.lower(), shown
        assert "Traceback" not in text, shown
        for value in long_strings(args):
            assert not echoed(text, value), f"echoed a {len(value)}-character argument: {shown}"
        if result.is_error:
            assert "errors.pydantic.dev" not in text, shown
        assert portal.call(client.list_tools).tools  # the server still answers

    check()


def _short(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)[:60]}" for k, v in args.items())
