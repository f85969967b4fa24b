"""The server kit through a real in-memory MCP client."""

import itertools
from typing import Annotated

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.server.mcpserver import Context, Resolve

from cadre_core.accounting import tool_errors
from cadre_core.config import LoadedConfig
from cadre_core.errors import WorkspaceError
from cadre_core.host_sampling import host_sample_request
from cadre_core.kit import Kit
from cadre_core.mcp_server import HostRoots, build_server
from cadre_core.models.base import Message, ModelRequest
from cadre_core.models.sampling import SamplingModel
from cadre_core.models.test import FunctionModel, TestModel
from cadre_core.router import Router
from tests.core.conftest import ledger_rows, make_config

pytestmark = pytest.mark.anyio
MODES = ["auto", "legacy"]


def make_server(models: dict, ledger=None, roles=None, heartbeat_s=0.05, root=None):
    config = make_config(**(roles or {"oracle": list(models)}))
    config.server.heartbeat_s = heartbeat_s
    router = Router(config, ledger, model_factory=lambda cand, cfg: models[cand.model])
    kit = Kit(
        "oracle",
        "cadre-test",
        config=LoadedConfig(config, {}, []),
        router=router,
        ledger=ledger,
        root=root,
    )
    server = build_server("oracle", "cadre-test", "test server", kit=kit)

    def prompt(question: str) -> ModelRequest:
        return ModelRequest([Message.user(question)], max_output_tokens=50)

    def ask_host(question: str, ctx: Context):
        return host_sample_request(ctx, kit, lambda: prompt(question))

    @server.tool()
    @tool_errors
    async def ask(
        question: str,
        ctx: Context,
        host: Annotated[types.CreateMessageResult | None, Resolve(ask_host)] = None,
    ) -> dict[str, str]:
        """Ask the routed model."""
        response = await kit.call_model(ctx, prompt(question), tool="ask", host_sample=host)
        return {"text": response.text, "model": response.model}

    @server.tool()
    @tool_errors
    async def read(path: str, roots: HostRoots = None) -> str:
        """Read a workspace file."""
        return kit.workspace(roots).resolve(path).read_text()

    @server.tool()
    @tool_errors
    async def explode() -> str:
        """Fail like a bug."""
        raise RuntimeError("kaboom")

    return server


@pytest.mark.parametrize("mode", MODES)
async def test_progress_heartbeat_reports_elapsed_model_and_phase(keys, mode):
    server = make_server({"openai:slow": TestModel("done", delay_s=0.4)})
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, message))

    async with Client(server, mode=mode) as client:
        result = await client.call_tool("ask", {"question": "q"}, progress_callback=on_progress)
    assert not result.is_error
    assert result.structured_content["text"] == "done"
    assert len(seen) >= 3
    assert all(b[0] > a[0] for a, b in itertools.pairwise(seen))
    assert "waiting for model: openai:slow" in seen[0][1]
    assert "elapsed" in seen[0][1]


@pytest.mark.parametrize("mode", MODES)
async def test_cancellation_stops_the_provider_call_and_is_recorded(keys, ledger, mode):
    state = {"started": False, "cancelled": False}
    stopped = anyio.Event()

    async def slow(request, model):
        state["started"] = True
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            state["cancelled"] = True
            stopped.set()
            raise
        return "never"

    server = make_server({"openai:slow": FunctionModel(slow)}, ledger=ledger)
    async with Client(server, mode=mode) as client:
        with anyio.move_on_after(0.3):
            await client.call_tool("ask", {"question": "q"})
        with anyio.fail_after(5):
            await stopped.wait()
    assert state["started"] and state["cancelled"]
    assert [r["outcome"] for r in ledger_rows(ledger)] == ["cancelled"]


@pytest.mark.parametrize("mode", MODES)
async def test_errors_are_readable_and_never_tracebacks(keys, tmp_path, mode):
    server = make_server({"openai:x": TestModel()}, root=tmp_path)
    async with Client(server, mode=mode) as client:
        crash = await client.call_tool("explode", {})
        outside = await client.call_tool("read", {"path": "../../etc/passwd"})
    assert crash.is_error
    assert "internal error (RuntimeError: kaboom)" in crash.content[0].text
    assert "Traceback" not in crash.content[0].text
    assert outside.is_error
    assert "outside the workspace roots" in outside.content[0].text


async def test_all_candidates_failing_names_the_keys_to_set(tmp_path):
    server = make_server({"openai:x": TestModel(), "anthropic:y": TestModel()}, root=tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("ask", {"question": "q"})
    assert result.is_error
    text = result.content[0].text
    assert text.endswith(
        "no model available for the oracle: set OPENAI_API_KEY or ANTHROPIC_API_KEY "
        "(`cadre doctor` shows what was found)"
    )


@pytest.mark.parametrize("mode", MODES)
async def test_host_roots_confine_file_access(tmp_path, mode):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("inside")
    (tmp_path / "b.txt").write_text("outside")
    server = make_server({"openai:x": TestModel()}, root=tmp_path)

    async def roots(ctx):
        return types.ListRootsResult(roots=[types.Root(uri=repo.as_uri(), name="repo")])

    async with Client(server, mode=mode, list_roots_callback=roots) as client:
        inside = await client.call_tool("read", {"path": "a.txt"})
        outside = await client.call_tool("read", {"path": str(tmp_path / "b.txt")})
    assert inside.content[0].text == "inside"
    assert outside.is_error


@pytest.mark.parametrize("mode", MODES)
async def test_host_model_answers_through_sampling_when_no_key_is_set(mode):
    server = make_server({"openai:x": TestModel(), "sampling:host": SamplingModel()})
    asked = []

    async def sampling(ctx, params):
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant",
            model="host-llm",
            stop_reason="endTurn",
            content=types.TextContent(type="text", text="from host"),
        )

    async with Client(server, mode=mode, sampling_callback=sampling) as client:
        result = await client.call_tool("ask", {"question": "what now?"})
    assert not result.is_error, result.content
    assert result.structured_content == {"text": "from host", "model": "sampling:host"}
    assert asked[0].messages[0].content.text == "what now?"


async def test_keyed_provider_is_preferred_over_sampling(keys):
    server = make_server({"openai:x": TestModel("from openai"), "sampling:host": SamplingModel()})
    asked = []

    async def sampling(ctx, params):
        asked.append(params)
        raise AssertionError("host must not be sampled")

    async with Client(server, sampling_callback=sampling) as client:
        result = await client.call_tool("ask", {"question": "q"})
    assert result.structured_content["text"] == "from openai"
    assert asked == []


@pytest.mark.parametrize("host", ["sampling:host", "SAMPLING:host", "Sampling"])
def test_only_the_hosts_model_is_not_keyed_in_any_spelling(host, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = make_config(oracle=["openai:x", host], search=["openai:x"])
    kit = Kit("oracle", "cadre-test", config=LoadedConfig(config, {}, []), router=Router(config, None))
    assert not kit.keyed()  # no key for openai, and the host's model needs none: no background job
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    assert kit.keyed() and kit.keyed("search")


@pytest.mark.parametrize("mode", MODES)
async def test_host_without_sampling_is_refused_clearly(mode):
    server = make_server({"openai:x": TestModel(), "sampling:host": SamplingModel()})
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("ask", {"question": "q"})
    assert result.is_error
    text = result.content[0].text
    assert text.endswith(
        "no model available for the oracle: set OPENAI_API_KEY (`cadre doctor` shows what was found), "
        "or use a host that supports MCP sampling"
    )


async def test_a_host_that_refuses_to_sample_is_named_with_the_keys_to_set():
    server = make_server({"openai:x": TestModel(), "sampling:host": SamplingModel()})

    async def refuse(ctx, params):
        # A refusal, shaped like the SDK client's reply without sampling (mcp.client.session._default_sampling_callback)
        return types.ErrorData(code=types.INVALID_REQUEST, message="User rejected sampling request")

    async with Client(server, mode="legacy", sampling_callback=refuse) as client:
        result = await client.call_tool("ask", {"question": "q"})
    assert result.is_error
    assert result.content[0].text.endswith(
        "set OPENAI_API_KEY (`cadre doctor` shows what was found), or use a host that supports MCP sampling "
        "(the host's model did not answer: the host refused or failed (User rejected sampling request))"
    )


async def test_a_second_host_question_in_one_call_is_refused_in_plain_words():
    server = make_server({"openai:x": TestModel(), "sampling:host": SamplingModel()})

    async def sampling(ctx, params):
        return types.CreateMessageResult(role="assistant", model="h", content=types.TextContent(type="text", text="a"))

    def prompt(question: str) -> ModelRequest:
        return ModelRequest([Message.user(question)], max_output_tokens=50)

    def ask_once(ctx: Context):
        return host_sample_request(ctx, server.kit, lambda: prompt("one"))

    @server.tool()
    @tool_errors
    async def twice(ctx: Context, host: Annotated[types.CreateMessageResult | None, Resolve(ask_once)] = None) -> dict:
        await server.kit.call_model(ctx, prompt("one"), tool="twice", host_sample=host)
        await server.kit.call_model(ctx, prompt("two"), tool="twice")
        return {}

    async with Client(server, sampling_callback=sampling) as client:
        result = await client.call_tool("twice", {})
    text = result.content[0].text
    assert result.is_error and "MCP 2026-07-28" not in text and "resolver" not in text
    assert "the host's model is asked only when no provider key is set, once per call" in text


async def test_listing_tools_opens_no_router_ledger_or_config(tmp_path):
    from cadre_search.server import create_server

    server = create_server(root=tmp_path)
    async with Client(server) as client:
        await client.list_tools()
    kit = server.kit
    assert (kit._config, kit._router, kit._ledger, kit._threads) == (None, None, None, None)


async def test_a_broken_ledger_leaves_tool_calls_working(keys, tmp_path):
    from cadre_core.ledger import Ledger

    blocker = tmp_path / "file"
    blocker.write_text("x")
    ledger = Ledger(blocker / "ledger.sqlite")  # cannot be created: a file is in the way
    server = make_server({"openai:x": TestModel("still fine")}, ledger=ledger)
    async with Client(server) as client:
        result = await client.call_tool("ask", {"question": "q"})
    assert result.structured_content["text"] == "still fine"
    assert ledger.flush() and len(ledger.unwritten) == 1


def test_workspace_defaults_to_root_then_cwd(tmp_path):
    assert Kit("oracle", "x", root=tmp_path).workspace().primary == tmp_path.resolve()
    with pytest.raises(WorkspaceError):
        Kit("oracle", "x", root=tmp_path / "missing").workspace()


def test_threads_continue_across_a_restart(tmp_path):
    from cadre_core.threads import ThreadStore

    kit = Kit("oracle", "x", threads=ThreadStore(tmp_path / "t.sqlite"))
    thread_id, history = kit.open_thread(None, "ask")
    assert history == []
    kit.save_turn(thread_id, [Message.user("q1"), Message.assistant("a1")], model="openai:gpt-5.2")
    restarted = Kit("oracle", "x", threads=ThreadStore(tmp_path / "t.sqlite"))
    same_id, history = restarted.open_thread(thread_id, "ask")
    assert same_id == thread_id
    assert [(m.role, m.text) for m in history] == [("user", "q1"), ("assistant", "a1")]


async def test_secrets_never_reach_the_provider(keys):
    fake_key = "AKIA" + "IOSFODNN7EXAMPLE"
    model = TestModel("ok")
    server = make_server({"openai:x": model})
    kit = server.kit
    request = ModelRequest([Message.user(f"deploy with {fake_key}")], system=f'token = "{fake_key}"')
    await kit.call_model(None, request, tool="ask")
    sent = model.requests[0]
    assert fake_key not in sent.messages[0].text and fake_key not in sent.system
    assert "[REDACTED" in sent.messages[0].text


async def test_a_bug_raising_value_error_is_reported_as_internal_not_as_bad_input():
    @tool_errors
    async def buggy() -> str:
        raise ValueError("index out of whack")

    from mcp.server.mcpserver.exceptions import ToolError

    with pytest.raises(ToolError, match=r"internal error \(ValueError: index out of whack\)"):
        await buggy()


def test_the_host_request_is_only_built_when_the_host_will_be_asked(keys):
    from types import SimpleNamespace

    from mcp.server.mcpserver import Sample
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    server = make_server({"openai:x": TestModel()})
    ctx = SimpleNamespace(client_capabilities=SimpleNamespace(sampling=object()), protocol_version="2026-07-28")
    legacy = SimpleNamespace(
        client_capabilities=ctx.client_capabilities, protocol_version=HANDSHAKE_PROTOCOL_VERSIONS[-1]
    )

    def build():
        raise AssertionError("files must not be packed when a keyed provider will answer")

    assert host_sample_request(ctx, server.kit, build) is None
    keyless = make_server({"anthropic:y": TestModel(), "sampling:host": TestModel()})
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ANTHROPIC_API_KEY")
        asked = ModelRequest([Message.user("q")])
        assert isinstance(host_sample_request(ctx, keyless.kit, lambda: asked), Sample)
        assert host_sample_request(legacy, keyless.kit, build) is None  # the tool body samples on old protocols
        assert host_sample_request(ctx, keyless.kit, lambda: None) is None  # nothing worth asking
        no_host = make_server({"anthropic:y": TestModel()})
        assert host_sample_request(ctx, no_host.kit, build) is None  # the route leaves the host out


def counting_server():
    from pydantic import Field

    from cadre_core.arguments import Names

    server = build_server("oracle", "cadre-test", "test server", kit=Kit("oracle", "cadre-test"))

    @server.tool()
    @tool_errors
    async def count(limit: Annotated[int, Field(ge=1)], tags: Names | None = None) -> str:
        """Count."""
        return str(limit)

    return server


async def test_bad_arguments_get_one_line_naming_the_argument_without_urls_or_echo():
    async with Client(counting_server()) as client:
        calls = [{"limit": "ten"}, {}, {"limit": 1, "tags": ["A" * 1_000_000]}, {"limit": 0, "tags": ["a"] * 21}]
        texts = [(await client.call_tool("count", args)).content[0].text for args in calls]
    assert texts[0] == "Error executing tool count: argument 'limit': expected an integer ≥ 1, got \"ten\""
    assert texts[1] == "Error executing tool count: argument 'limit' is required"
    assert texts[2] == ("Error executing tool count: argument 'tags[0]': expected a string of at most 200 characters, "
                        'got "' + "A" * 59 + '… (1,000,002 characters)')  # fmt: skip
    assert "argument 'limit': expected an integer ≥ 1, got 0" in texts[3]
    assert "argument 'tags': expected a list of at most 20 items, each a string of at most 200 characters, " \
           "got a list of 21 items" in texts[3]  # fmt: skip
    assert all("\n" not in t and "pydantic.dev" not in t and len(t) < 400 for t in texts)


async def test_failures_caused_by_the_input_are_clear_errors_not_internal_ones(tmp_path):
    import subprocess

    server = make_server({"openai:x": TestModel()}, root=tmp_path)

    @server.tool()
    @tool_errors
    async def run(arg: str) -> str:
        """Pass `arg` to a command."""
        done = await anyio.to_thread.run_sync(lambda: subprocess.run(["true", arg], check=False))
        return done.args[1]

    async with Client(server) as client:
        too_long = await client.call_tool("read", {"path": "x" * 5000})
        nul = await client.call_tool("read", {"path": "a\x00b"})
        no_user = await client.call_tool("read", {"path": "~nosuchuser_cadre/x"})
        # execve(2): a single argument over MAX_ARG_STRLEN (32 pages, 128 KiB on Linux) fails with E2BIG
        e2big = await client.call_tool("run", {"arg": "x" * 200_000})
    texts = [r.content[0].text for r in (too_long, nul, no_user, e2big)]
    assert all(r.is_error for r in (too_long, nul, no_user, e2big))
    assert "a path or file name is too long for this system; pass a shorter path" in texts[0]
    assert "NUL byte" in texts[1]
    assert "cannot resolve '~nosuchuser_cadre/x'" in texts[2]
    assert "an argument is too long to pass to a command; pass a shorter value" in texts[3]
    assert all("internal error" not in t and "x" * 100 not in t for t in texts)


async def test_an_error_never_repeats_a_long_argument():
    @tool_errors
    async def look(path: str) -> str:
        raise WorkspaceError(f"'{path}' does not exist")

    from mcp.server.mcpserver.exceptions import ToolError

    with pytest.raises(ToolError) as raised:
        await look(path="p" * 5000)
    assert str(raised.value) == "'" + "p" * 60 + "… (5,000 characters)' does not exist"


def test_clip_keeps_input_short_and_on_one_line():
    from cadre_core.errors import clip

    assert clip("src/app.py") == "src/app.py"
    assert clip("a\nb\x00c\ud800") == "a\\nb\\x00c\\ud800"
    assert clip("x" * 100, 10) == "xxxxxxxxxx… (100 characters)"
