"""The oracle server through a real in-memory MCP client, with scripted models."""

import itertools
import json

import anyio
import mcp_types as types
import pytest
from mcp import Client

from cadre_core.models.base import ModelResponse, ToolCall, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.testing import wire_fake_models
from cadre_oracle.server import create_server
from tests.core.conftest import make_config
from tests.servers.conftest import make_repo

pytestmark = pytest.mark.anyio
FAKE_KEY = "AKIA" + "IOSFODNN7EXAMPLE"


def answer(text="Use a lock.", citations=(), **extra):
    body = {"answer": text, "key_points": ["k"], "risks": ["r"], "next_steps": ["n"], "confidence": "high",
            "citations": list(citations)}  # fmt: skip
    return ModelResponse(text=json.dumps({**body, **extra}), usage=Usage(input_tokens=1000, output_tokens=200))


def always_reading(seen: list):
    """A model that never stops reading, each time something new."""

    def reply(request, model):
        seen.append(request)
        call = ToolCall(f"c{len(seen)}", "grep", {"pattern": f"word{len(seen)}"})
        return ModelResponse(
            tool_calls=[call], finish_reason="tool_use", usage=Usage(input_tokens=100, output_tokens=10)
        )

    return reply


def oracle(root, models: dict, tmp_path, *, roles=None, heartbeat_s=5.0):
    """A real oracle server whose router uses the given fake models."""
    server = create_server(root=root)
    config = make_config(**(roles or {"oracle": list(models)}))
    config.server.heartbeat_s = heartbeat_s
    return server, wire_fake_models(server, models, config=config, state=tmp_path)


@pytest.fixture
def workspace(tmp_path):
    return make_repo(
        tmp_path / "ws",
        {
            "app/store.py": "import threading\n\nclass Store:\n    def put(self, k, v):\n        self.d[k] = v\n",
            "config/settings.py": f'API = "x"\naws_key = "{FAKE_KEY}"\n',
            "AGENTS.md": "Always prefer small functions.\n",
            ".gitignore": "build/\n",
            "build/gen.py": "generated = True\n",
        },
    )


async def test_consult_returns_a_structured_cited_answer_and_redacts_files(workspace, tmp_path, keys):
    seen = []

    def reply(request, model):
        seen.append(request)
        return answer(citations=[{"path": "app/store.py", "start_line": 3, "end_line": 5},
                                 {"path": "app/nope.py", "start_line": 1, "end_line": 2}])  # fmt: skip

    server, _ = oracle(workspace, {"openai:gpt-5.2": FunctionModel(reply)}, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool(
            "consult_oracle", {"question": "Is Store thread-safe?", "files": ["app/**/*.py", "config/settings.py"]}
        )
    data = result.structured_content
    assert not result.is_error, result.content
    assert data["answer"] == "Use a lock." and data["confidence"] == "high"
    assert data["citations"] == [{"path": "app/store.py", "start_line": 3, "end_line": 5}]
    assert any("dropped citation app/nope.py" in n for n in data["notes"])
    assert data["model"] == "openai:gpt-5.2"
    assert data["cost_usd"] == pytest.approx(1000 * 1.75e-6 + 200 * 14e-6)
    assert data["tokens"]["input"] == 1000 and data["thread_id"].startswith("t_")
    sent = json.dumps([m.text for m in seen[0].messages]) + seen[0].system
    assert "     3 | class Store:" in sent or "3 | class Store:" in sent
    assert FAKE_KEY not in sent
    assert "Always prefer small functions." in seen[0].system
    assert seen[0].output_schema["required"] == ["answer", "key_points", "risks", "next_steps", "confidence",
                                                 "citations"]  # fmt: skip


async def test_the_oracle_reads_more_files_through_confined_tools(workspace, tmp_path, keys):
    def reply(request, model):
        if len(request.messages) == 1:
            assert {t.name for t in request.tools} == {"read_file", "grep", "list_dir"}
            calls = [ToolCall("a", "read_file", {"path": "app/store.py"}), ToolCall("b", "grep", {"pattern": "class"}),
                     ToolCall("c", "read_file", {"path": "../../etc/passwd"}),
                     ToolCall("d", "read_file", {"path": "build/gen.py"})]  # fmt: skip
            return ModelResponse(tool_calls=calls, finish_reason="tool_use", usage=Usage(input_tokens=10))
        results = {m.tool_call_id: (m.text, m.is_error) for m in request.messages if m.role == "tool"}
        assert "class Store:" in results["a"][0] and not results["a"][1]
        assert "app/store.py:3: class Store:" in results["b"][0]
        assert results["c"][1] and "outside the workspace roots" in results["c"][0]
        assert results["d"][1] and "ignored" in results["d"][0]
        return answer("Store.put is not locked.")

    server, _ = oracle(workspace, {"openai:gpt-5.2": FunctionModel(reply)}, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "Check Store", "mode": "review"})
    assert result.structured_content["answer"] == "Store.put is not locked."


async def test_invalid_output_is_repaired_then_falls_back_and_is_recorded_off_rails(workspace, tmp_path, keys):
    broken = FunctionModel(lambda r, m: ModelResponse(text="{not json", usage=Usage(input_tokens=5)))
    good = FunctionModel(lambda r, m: answer("From Claude."))
    models = {"openai:gpt-5.2": broken, "anthropic:claude-sonnet-4-5": good}
    server, ledger = oracle(workspace, models, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
    assert result.structured_content["answer"] == "From Claude."
    assert result.structured_content["model"] == "anthropic:claude-sonnet-4-5"
    assert len(broken.requests) == 2  # the answer and one repair
    ledger.flush()
    assert [(r["model"], r["outcome"], r["detector"]) for r in ledger.store.rows()] == [
        ("gpt-5.2", "off_rails", "invalid_structured_output"),
        ("gpt-5.2", "off_rails", "invalid_structured_output"),
        ("claude-sonnet-4-5", "ok", None),
    ]


async def test_progress_is_sent_during_a_long_call_without_gaps(workspace, tmp_path, keys):
    async def slow(request, model):
        await anyio.sleep(0.5)
        return answer()

    server, _ = oracle(workspace, {"openai:gpt-5.2": FunctionModel(slow)}, tmp_path, heartbeat_s=0.05)
    stamps = []

    async def on_progress(progress, total, message):
        stamps.append((anyio.current_time(), message))

    async with Client(server) as client:
        await client.call_tool("consult_oracle", {"question": "q"}, progress_callback=on_progress)
    assert len(stamps) >= 5
    assert max(b[0] - a[0] for a, b in itertools.pairwise(stamps)) < 0.5
    assert "openai:gpt-5.2" in stamps[0][1]


async def test_cancelling_a_consult_stops_the_model_and_records_it(workspace, tmp_path, keys):
    stopped = anyio.Event()

    async def hang(request, model):
        try:
            await anyio.sleep(60)
        finally:
            stopped.set()

    server, ledger = oracle(workspace, {"openai:gpt-5.2": FunctionModel(hang)}, tmp_path)
    async with Client(server) as client:
        with anyio.move_on_after(0.3):
            await client.call_tool("consult_oracle", {"question": "q"})
        with anyio.fail_after(5):
            await stopped.wait()
    ledger.flush()
    assert [r["outcome"] for r in ledger.store.rows()] == ["cancelled"]


async def test_threads_continue_after_a_restart_and_on_another_vendor(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    first = FunctionModel(lambda r, m: answer("Use Postgres."))
    server, _ = oracle(workspace, {"openai:gpt-5.2": first, "anthropic:claude-sonnet-4-5": first}, tmp_path)
    async with Client(server) as client:
        one = (await client.call_tool("consult_oracle", {"question": "Which database?"})).structured_content
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    second = FunctionModel(lambda r, m: answer("Yes, with pgbouncer."))
    restarted, _ = oracle(workspace, {"openai:gpt-5.2": first, "anthropic:claude-sonnet-4-5": second}, tmp_path)
    async with Client(restarted) as client:
        two = await client.call_tool("consult_oracle", {"question": "And pooling?", "thread_id": one["thread_id"]})
    data = two.structured_content
    assert data["thread_id"] == one["thread_id"]
    assert data["model"] == "anthropic:claude-sonnet-4-5"
    texts = [m.text for m in second.requests[0].messages]
    assert texts[0].startswith("Which database?") and texts[1] == "Use Postgres." and "And pooling?" in texts[2]


async def test_unknown_thread_says_what_to_do(workspace, tmp_path, keys):
    server, _ = oracle(workspace, {"openai:gpt-5.2": FunctionModel(lambda r, m: answer())}, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q", "thread_id": "t_missing"})
    assert result.is_error and "Omit thread_id to start a new thread" in result.content[0].text


async def test_wait_false_returns_a_job_and_the_result_survives_a_restart(workspace, tmp_path, keys):
    async def slow(request, model):
        await anyio.sleep(0.2)
        return answer("Background answer.")

    models = {"openai:gpt-5.2": FunctionModel(slow)}
    server, _ = oracle(workspace, models, tmp_path)
    async with Client(server) as client:
        started = (await client.call_tool("consult_oracle", {"question": "q", "wait": False})).structured_content
        assert started["status"] == "running"
    restarted, _ = oracle(workspace, models, tmp_path)
    async with Client(restarted) as client:
        with anyio.fail_after(20):
            while True:
                polled = (await client.call_tool("oracle_result", {"job_id": started["job_id"]})).structured_content
                if polled["status"] != "running":
                    break
                await anyio.sleep(0.1)
        missing = await client.call_tool("oracle_result", {"job_id": "job_nope"})
    assert polled["status"] == "done", polled
    assert polled["result"]["answer"] == "Background answer."
    assert polled["result"]["cost_usd"] == pytest.approx(1000 * 1.75e-6 + 200 * 14e-6)  # the job's own calls
    assert polled["result"]["tokens"]["input"] == 1000
    assert missing.is_error


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_no_key_uses_the_host_model_through_sampling(workspace, tmp_path, mode):
    from cadre_core.models.sampling import SamplingModel

    server, _ = oracle(workspace, {"openai:gpt-5.2": None, "sampling:host": SamplingModel()}, tmp_path)

    async def sampling(ctx, params):
        text = types.TextContent(type="text", text="Plain prose from the host.")
        return types.CreateMessageResult(role="assistant", model="host-llm", stop_reason="endTurn", content=text)

    async with Client(server, mode=mode, sampling_callback=sampling) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
    data = result.structured_content
    assert not result.is_error, result.content
    assert data["model"] == "host"
    assert data["answer"] == "Plain prose from the host." and data["confidence"] == "low"


async def test_no_key_and_no_sampling_names_the_keys_to_set(workspace, tmp_path):
    from cadre_core.models.sampling import SamplingModel

    server, _ = oracle(workspace, {"openai:gpt-5.2": None, "sampling:host": SamplingModel()}, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
        background = await client.call_tool("consult_oracle", {"question": "q", "wait": False})
    assert result.is_error and "OPENAI_API_KEY" in result.content[0].text
    assert background.is_error and "wait=false needs a provider key" in background.content[0].text


async def test_review_change_reviews_the_working_tree_against_head(workspace, tmp_path, keys):
    git = ["git", "-C", str(workspace), "-c", "user.email=t@t", "-c", "user.name=t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        await anyio.run_process([*git, *args])
    (workspace / "app/store.py").write_text("class Store:\n    def put(self, k, v):\n        eval(v)\n")
    seen = []

    def reply(request, model):
        seen.append(request)
        findings = [
            {"severity": "minor", "path": "app/store.py", "line": 1, "title": "t", "explanation": "e",
             "suggestion": "s"},
            {"severity": "blocker", "path": "app/store.py", "line": 3, "title": "eval of input",
             "explanation": "runs code", "suggestion": "remove eval"},
        ]  # fmt: skip
        return ModelResponse(text=json.dumps({"summary": "Unsafe.", "findings": findings}), usage=Usage(10, 0, 0, 5))

    server, _ = oracle(workspace, {"google:gemini-3-pro-preview": FunctionModel(reply)}, tmp_path,
                       roles={"review": ["google:gemini-3-pro-preview"]})  # fmt: skip
    async with Client(server) as client:
        result = await client.call_tool("review_change", {"focus": "security"})
        clean = await client.call_tool("review_change", {"base": "HEAD", "diff": None})
        bad_ref = await client.call_tool("review_change", {"base": "--output=/tmp/x"})
    data = result.structured_content
    assert [f["severity"] for f in data["findings"]] == ["blocker", "minor"]
    assert data["model"] == "google:gemini-3-pro-preview"
    assert "+        eval(v)" in seen[0].messages[0].text and "Focus: security" in seen[0].messages[0].text
    assert not clean.is_error
    assert bad_ref.is_error and "not a git ref" in bad_ref.content[0].text


async def commit_and_change(workspace):
    """A real git repository whose working tree changes app/store.py against HEAD."""
    git = ["git", "-C", str(workspace), "-c", "user.email=t@t", "-c", "user.name=t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        await anyio.run_process([*git, *args])
    (workspace / "app/store.py").write_text(f"class Store:\n    def put(self, k, v):\n        eval(v)  # {FAKE_KEY}\n")


def host_model(asked: list):
    """The host's model as an MCP client's sampling callback: a review or an oracle answer, as JSON."""

    async def sampling(ctx, params):
        asked.append(params)
        prompt = params.messages[0].content.text
        if "Change to review (unified diff)" in prompt:
            finding = {"severity": "blocker", "path": "app/store.py", "line": 3, "title": "eval of input",
                       "explanation": "runs code", "suggestion": "remove eval"}  # fmt: skip
            body = {"summary": "Unsafe.", "findings": [finding]}
        else:
            body = json.loads(answer("Use Postgres.").text)
        text = types.TextContent(type="text", text=json.dumps(body))
        return types.CreateMessageResult(role="assistant", model="host-llm", stop_reason="endTurn", content=text)

    return sampling


NO_KEY_ROUTE = {"openai:gpt-5.2": None, "anthropic:claude-sonnet-4-5": None, "google:gemini-3-pro-preview": None}


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
async def test_without_keys_review_and_second_opinions_ask_the_host_model(workspace, tmp_path, mode):
    from cadre_core.models.sampling import SamplingModel

    await commit_and_change(workspace)
    models = {**NO_KEY_ROUTE, "sampling:host": SamplingModel()}
    server, _ = oracle(workspace, models, tmp_path, roles={"oracle": list(models), "review": list(models)})
    asked: list = []
    async with Client(server, mode=mode, sampling_callback=host_model(asked)) as client:
        review = await client.call_tool("review_change", {"focus": "security"})
        opinions = await client.call_tool("second_opinions", {"question": "Which store?", "n": 3})
    assert not review.is_error, review.content
    data = review.structured_content
    assert data["model"] == "host" and data["summary"] == "Unsafe."
    assert data["findings"] == [{"severity": "blocker", "path": "app/store.py", "line": 3, "title": "eval of input",
                                 "explanation": "runs code", "suggestion": "remove eval"}]  # fmt: skip
    sent = asked[0].messages[0].content.text
    assert "Focus: security" in sent and "+        eval(v)" in sent
    assert FAKE_KEY not in sent  # the diff is redacted before the host sees it
    assert not opinions.is_error, opinions.content
    data = opinions.structured_content
    assert [(a["model"], a["answer"]) for a in data["answers"]] == [("host", "Use Postgres.")]
    assert data["synthesis"] == ""
    assert data["notes"] == [
        "no provider key is set, so this is one opinion, from your host's model, not several vendors; set "
        "OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY for opinions from two or three vendors"
    ]
    assert len(asked) == 2  # one question each: nothing asked twice


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
async def test_without_keys_or_host_sampling_the_error_says_what_to_set(workspace, tmp_path, mode):
    from cadre_core.models.sampling import SamplingModel

    await commit_and_change(workspace)
    models = {**NO_KEY_ROUTE, "sampling:host": SamplingModel()}
    server, _ = oracle(workspace, models, tmp_path, roles={"oracle": list(models), "review": list(models)})
    async with Client(server, mode=mode) as client:
        review = await client.call_tool("review_change", {})
        opinions = await client.call_tool("second_opinions", {"question": "Which store?"})
    keys = "set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY (`cadre doctor` shows what was found)"
    assert review.is_error and review.content[0].text.endswith(
        f"no model available for review: {keys}, or use a host that supports MCP sampling"
    )
    assert opinions.is_error and opinions.content[0].text.endswith(
        f"no model available for the oracle: {keys}, or use a host that supports MCP sampling"
    )


async def test_second_opinions_short_of_vendors_says_so_in_one_sentence(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    server, _ = oracle(workspace, {**NO_KEY_ROUTE, "openai:gpt-5.2": FunctionModel(lambda r, m: answer())}, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("second_opinions", {"question": "Which store?"})
    assert result.is_error and result.content[0].text.endswith(
        "second_opinions needs 2 vendors with keys but found 1 (openai); "
        "set ANTHROPIC_API_KEY or GEMINI_API_KEY for another"
    )
    monkeypatch.delenv("OPENAI_API_KEY")
    async with Client(server) as client:  # the route has no host: nothing else to suggest
        result = await client.call_tool("second_opinions", {"question": "Which store?"})
    assert result.is_error and result.content[0].text.endswith(
        "no model available for second opinions: set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY "
        "(`cadre doctor` shows what was found)"
    )


async def test_second_opinions_asks_vendors_in_parallel_and_synthesises(workspace, tmp_path, keys):
    gpt = FunctionModel(lambda r, m: answer("Use Redis."))
    claude = FunctionModel(lambda r, m: answer("Use Postgres.") if r.output_schema else "Agreement: both cache.")
    models = {"openai:gpt-5.2": gpt, "anthropic:claude-sonnet-4-5": claude}
    server, ledger = oracle(workspace, models, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("second_opinions", {"question": "Which store?", "n": 2})
        too_many = await client.call_tool("second_opinions", {"question": "Which store?", "n": 3})
    data = result.structured_content
    assert [(a["model"], a["answer"]) for a in data["answers"]] == [
        ("openai:gpt-5.2", "Use Redis."),
        ("anthropic:claude-sonnet-4-5", "Use Postgres."),
    ]
    assert all(a["cost_usd"] > 0 for a in data["answers"])
    assert data["synthesis"]
    assert data["cost_usd"] >= sum(a["cost_usd"] for a in data["answers"])
    ledger.flush()
    rows = [r for r in ledger.store.rows() if r["tool"] == "second_opinions"]
    assert {r["thread_id"] for r in rows} == {data["thread_id"]}  # `cadre trace` sees all three calls
    assert data["tokens"]["input"] == sum(r["input_tokens"] for r in rows)
    assert data["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert too_many.is_error and "needs 3 vendors" in too_many.content[0].text


async def test_tools_list_fits_the_budget(workspace):
    async with Client(create_server(root=workspace)) as client:
        tools = (await client.list_tools()).tools
    blob = json.dumps([t.model_dump(mode="json", exclude_none=True, by_alias=True) for t in tools])
    assert [t.name for t in tools] == ["consult_oracle", "oracle_result", "review_change", "second_opinions"]
    assert len(blob) // 4 <= 900


async def test_a_long_thread_is_summarised_before_it_moves_on(workspace, tmp_path, keys):
    seen = []

    def reply(request, model):
        seen.append(request)
        if request.output_schema is None:
            return ModelResponse(text="We chose Postgres and discussed pooling.", usage=Usage(input_tokens=50))
        return answer("Continue with pgbouncer.")

    server, _ = oracle(workspace, {"anthropic:claude-sonnet-4-5": FunctionModel(reply)}, tmp_path)
    kit = server.kit
    thread_id, _ = kit.open_thread(None, "consult_oracle")
    from cadre_core.models.base import Message

    long_turns = [Message.user("x" * 50_000), Message.assistant("y" * 50_000)] * 3
    kit.save_turn(thread_id, [*long_turns, Message.user("latest q"), Message.assistant("latest a")])
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "next?", "thread_id": thread_id})
    assert result.structured_content["answer"] == "Continue with pgbouncer."
    final = seen[-1].messages
    assert final[0].text.startswith("Summary of the earlier conversation:\nWe chose Postgres")
    assert [m.text for m in final[-3:-1]] == ["latest q", "latest a"]
    assert sum(len(m.text) for m in final) < 20_000


async def test_cost_and_tokens_count_every_attempt_including_repairs(workspace, tmp_path, keys):
    replies = iter(["{bad", json.dumps(json.loads(answer().text))])
    model = FunctionModel(lambda r, m: ModelResponse(text=next(replies), usage=Usage(input_tokens=100_000)))
    server, ledger = oracle(workspace, {"openai:gpt-5.2": model}, tmp_path)
    async with Client(server) as client:
        data = (await client.call_tool("consult_oracle", {"question": "q"})).structured_content
    ledger.flush()
    assert data["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in ledger.store.rows()))
    assert data["tokens"]["input"] == 200_000


async def test_progress_only_goes_up_across_tool_turns(workspace, tmp_path, keys):
    async def reply(request, model):
        await anyio.sleep(0.2)
        if len(request.messages) == 1:
            return ModelResponse(tool_calls=[ToolCall("a", "list_dir", {})], finish_reason="tool_use")
        return answer()

    server, _ = oracle(workspace, {"openai:gpt-5.2": FunctionModel(reply)}, tmp_path, heartbeat_s=0.05)
    values = []

    async def on_progress(progress, total, message):
        values.append(progress)

    async with Client(server) as client:
        await client.call_tool("consult_oracle", {"question": "q"}, progress_callback=on_progress)
    assert len(values) >= 4 and values == sorted(values)


async def test_the_last_turn_must_answer_and_keeps_tools_declared(workspace, tmp_path, keys):
    seen = []
    reply = always_reading(seen)

    server, _ = oracle(workspace, {"openai:gpt-5.2": FunctionModel(reply)}, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
    assert result.is_error and "kept reading files after 4 tool turns" in result.content[0].text
    # what the failed call cost is in the error: 5 attempts x 110 tokens at gpt-5.2's prices
    cost = 5 * (100 * 1.75e-6 + 10 * 14e-6)
    assert f"(spent ${cost:.4f} on 550 tokens before failing; `cadre trace t_" in result.content[0].text
    assert [r.tools_allowed for r in seen] == [True, True, True, True, False]
    assert seen[-1].tools  # declared, because the history holds tool calls


async def test_one_vendor_failing_keeps_the_others_answer(workspace, tmp_path, keys):
    from cadre_core.errors import AuthError

    def denied(request, model):
        raise AuthError("bad key", env_var="ANTHROPIC_API_KEY", provider="anthropic", model="claude-sonnet-4-5")

    models = {"openai:gpt-5.2": FunctionModel(lambda r, m: answer("Use Redis.")),
              "anthropic:claude-sonnet-4-5": FunctionModel(denied)}  # fmt: skip
    server, _ = oracle(workspace, models, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("second_opinions", {"question": "Which store?"})
    data = result.structured_content
    assert not result.is_error
    assert data["answers"][0]["answer"] == "Use Redis."
    assert "ANTHROPIC_API_KEY" in data["answers"][1]["error"]
    assert "no synthesis" in data["notes"][-1]


def test_grep_neither_hangs_nor_reveals_secrets(workspace):
    from cadre_core.workspace import Workspace
    from cadre_oracle.readonly import grep

    ws = Workspace([workspace])
    (workspace / "app/slow.py").write_text("a" * 40 + "!\n")
    assert "no matches" in grep(ws, "(a+)+$")  # taken literally: no catastrophic backtracking
    assert "no matches" in grep(ws, "AKIAIOSF")  # only inside a secret: not reported
    assert "app/store.py:3: class Store:" in grep(ws, r"class\s+Store")


async def test_tool_turns_are_configurable_per_role(workspace, tmp_path, keys):
    seen = []
    reply = always_reading(seen)

    server, _ = oracle(workspace, {"openai:gpt-5.2": FunctionModel(reply)}, tmp_path)
    server.kit.config.config.roles["oracle"].max_tool_turns = 1
    async with Client(server) as client:
        result = await client.call_tool("consult_oracle", {"question": "q"})
    assert "after 1 tool turns" in result.content[0].text and len(seen) == 2


async def test_a_tool_call_loop_ends_the_reading_early(workspace, tmp_path, keys):
    seen = []

    def reply(request, model):
        seen.append(request)
        if request.tools_allowed:
            return ModelResponse(tool_calls=[ToolCall(f"c{len(seen)}", "read_file", {"path": "app/store.py"})],
                                 finish_reason="tool_use")  # fmt: skip
        return answer("Locked now.")

    server, _ = oracle(workspace, {"openai:gpt-5.2": FunctionModel(reply)}, tmp_path)
    server.kit.config.config.roles["oracle"].max_tool_turns = 10
    async with Client(server) as client:
        data = (await client.call_tool("consult_oracle", {"question": "q"})).structured_content
    assert data["answer"] == "Locked now."
    assert len(seen) == 4  # three identical reads, then the answer turn
    assert any("read_file" in n and "called 3 times" in n for n in data["notes"])


async def test_review_refuses_a_base_git_could_misread_before_running_git(workspace, tmp_path):
    server, _ = oracle(workspace, {}, tmp_path, roles={"review": []})
    out = tmp_path / "written-by-git"
    async with Client(server) as client:
        results = [
            await client.call_tool("review_change", {"base": base})
            for base in (f"--output={out}", "HEAD\r\n--output=x", "HEAD~1 --stat", "HEAD\x00")
        ]
    texts = [r.content[0].text for r in results]
    assert all(
        r.is_error and "is not a git ref; pass a branch, tag or commit" in t
        for r, t in zip(results, texts, strict=True)
    )
    assert "HEAD\\r\\n--output=x" in texts[1] and "\n" not in texts[1]
    assert not out.exists()
