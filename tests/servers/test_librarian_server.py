"""The librarian server through a real in-memory MCP client, scripted models and a fixture environment."""

import json
import re
import threading

import anyio
import pytest
from mcp import Client

from cadre_core.models.base import ModelResponse, ToolCall, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.testing import wire_fake_models
from cadre_librarian.library import Library
from cadre_librarian.server import create_server
from cadre_librarian.sources import Excerpt, NetworkError, NotFoundError, RateLimitedError, SourceError, TooLargeError
from tests.core.conftest import make_config
from tests.servers.librarian_env import make_env

pytestmark = pytest.mark.anyio
MODEL = "openai:gpt-5.2"


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path / "ws")


def librarian(root, model, tmp_path, *, library=None):
    server = create_server(root=root, library=library or Library(environ={}))
    return server, wire_fake_models(server, model, config=make_config(librarian=[MODEL]), state=tmp_path)


async def call(server, tool, args):
    async with Client(server) as client:
        result = await client.call_tool(tool, args)
    text = result.content[0].text
    return (text if result.is_error else json.loads(text)), result.is_error


HEADER = re.compile(r"^(E\d+) \[\w+\] \S+ (\S+):(\d+)-(\d+)", re.MULTILINE)


def evidence_id(request, path: str, containing: str) -> tuple[str, int]:
    """The id and first line the librarian gave an excerpt of `path` whose lines contain `containing`."""
    shown = "\n".join(m.text for m in request.messages if m.text)
    heads = list(HEADER.finditer(shown))
    for head, after in zip(heads, [*heads[1:], None], strict=True):
        block = shown[head.start() : after.start() if after else len(shown)]
        if head.group(2) == path and containing in block:
            return head.group(1), int(head.group(3))
    raise AssertionError(f"no excerpt of {path} with {containing!r} was shown")


def line_of(request, eid: str, containing: str) -> int:
    shown = "\n".join(m.text for m in request.messages if m.text)
    block = shown[shown.index(f"{eid} [") :]
    for row in block.split("\n")[1:]:
        number, _, text = row.strip().partition("  ")
        if containing in text:
            return int(number)
    raise AssertionError(containing)


def answer(text, citations):
    return ModelResponse(
        text=json.dumps({"answer": text, "citations": citations}), usage=Usage(input_tokens=2000, output_tokens=300)
    )


async def test_research_reads_in_parallel_then_answers_with_checked_citations(env, tmp_path, keys):
    turns = []

    def reply(request, model):
        turns.append(request)
        if len(turns) == 1:
            assert "fakelib 1.2.0 is installed" in request.messages[-1].text  # seeded before the first turn
            return ModelResponse(
                tool_calls=[
                    ToolCall("a", "read_installed", {"package": "fakelib", "path": "fakelib/retry.py",
                                                     "start_line": 1, "end_line": 40}),
                    ToolCall("b", "search_installed", {"package": "fakelib", "query": "Client retry"}),
                ],
                usage=Usage(input_tokens=1500, output_tokens=50),
            )  # fmt: skip
        eid, _ = evidence_id(request, "fakelib/retry.py", "def sleep_for")
        line = line_of(request, eid, "return self.backoff_factor")
        bad_line = line_of(request, eid, "class Retry:")
        return answer(
            "Backoff doubles each attempt [1]. Retries default to 3 [2]. It uses jitter [3].",
            [
                {"evidence": eid, "start_line": line, "end_line": line,
                 "quote": "return self.backoff_factor * (2 ** (attempt - 1))"},
                {"evidence": eid, "start_line": bad_line, "end_line": bad_line, "quote": "DEFAULT_ATTEMPTS = 3"},
                {"evidence": eid, "start_line": line, "end_line": line, "quote": "random.uniform(0, 1)"},
            ],
        )  # fmt: skip

    server, ledger = librarian(env, FunctionModel(reply), tmp_path)
    data, is_error = await call(server, "research", {"question": "How does fakelib back off between retries?"})
    assert not is_error, data
    assert len(turns) == 2
    # both tool calls of the first turn were answered in the second request
    tool_results = [m for m in turns[1].messages if m.role == "tool"]
    assert len(tool_results) == 2 and not any(m.is_error for m in tool_results)

    retry_py = (env / ".venv/lib/python3.11/site-packages/fakelib/retry.py").read_text().split("\n")
    cites = data["citations"]
    assert len(cites) == 2  # the invented jitter quote is dropped
    for cite in cites:  # every kept span exists and holds its quote
        span = "\n".join(retry_py[cite["start_line"] - 1 : cite["end_line"]])
        assert " ".join(cite["quote"].split()) in " ".join(span.split())
        assert cite["source"] == "local" and cite["package_or_repo"] == "fakelib"
        assert cite["version_or_ref"] == "1.2.0" and cite["path"] == "fakelib/retry.py"
        assert cite["url"].endswith(f"#L{cite['start_line']}-L{cite['end_line']}")
    moved = cites[1]
    assert retry_py[moved["start_line"] - 1] == "DEFAULT_ATTEMPTS = 3"  # moved to where the quote really is
    assert data["answer"] == "Backoff doubles each attempt [1]. Retries default to 3 [2]. It uses jitter ."
    assert any("dropped citation [3]" in n for n in data["notes"])
    assert any("moved citation [2]" in n for n in data["notes"])
    assert data["model"] == MODEL and data["thread_id"]
    ledger.flush()
    assert data["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in ledger.store.rows()))
    assert data["cost_usd"] > 0 and data["tokens"]["input"] == 3500


async def test_a_repeated_tool_call_stops_the_reading_and_forces_the_answer(env, tmp_path, keys):
    seen = []

    def reply(request, model):
        seen.append(request)
        if request.tools_allowed:
            return ModelResponse(tool_calls=[ToolCall(f"c{len(seen)}", "list_installed", {"contains": "fake"})])
        return answer("fakelib and fakeuser are installed.", [])

    server, _ = librarian(env, FunctionModel(reply), tmp_path)
    data, is_error = await call(server, "research", {"question": "Which fake packages are installed?"})
    assert not is_error, data
    assert len(seen) == 4  # three identical calls, then the forced answer
    assert any("stopped the librarian's reading early" in n for n in data["notes"])


async def test_a_thread_continues_with_the_earlier_question(env, tmp_path, keys):
    seen = []

    def reply(request, model):
        seen.append(request)
        return answer(f"answer {len(seen)}", [])

    server, _ = librarian(env, FunctionModel(reply), tmp_path)
    first, _ = await call(server, "research", {"question": "What does fakelib do?", "libraries": ["fakelib"]})
    second, _ = await call(server, "research", {"question": "And its client?", "thread_id": first["thread_id"]})
    assert second["thread_id"] == first["thread_id"]
    texts = [m.text for m in seen[-1].messages]
    assert "What does fakelib do?" in texts and "answer 1" in texts


async def test_without_a_model_research_returns_ranked_evidence_and_says_why(env, tmp_path):
    server, _ = librarian(env, FunctionModel(lambda r, m: "unused"), tmp_path)  # no keys in the environment
    data, is_error = await call(
        server, "research", {"question": "How does fakelib compute backoff sleep_for?", "libraries": ["fakelib"]}
    )
    assert not is_error, data
    assert data["answer"] is None and data["model"] is None
    assert data["evidence"][0]["path"] == "fakelib/retry.py"
    assert data["evidence"][0]["id"] == "E1" and "backoff" in data["evidence"][0]["text"]
    assert data["notes"][0].startswith("no synthesised answer")
    assert sum(n.count("OPENAI_API_KEY") for n in data["notes"]) == 1  # the keys are named once, not twice


async def test_research_rejects_an_empty_question(env, tmp_path, keys):
    server, _ = librarian(env, FunctionModel(lambda r, m: "unused"), tmp_path)
    text, is_error = await call(server, "research", {"question": "  "})
    assert is_error and "question is empty" in text


class FakeGitHub:
    has_token = False

    def __init__(self):
        self.reads = []

    async def read_file(self, repo, path, ref=None, start_line=1, end_line=None):
        self.reads.append((repo, path, ref))
        if ref != "v1.0.0":
            raise NotFoundError(f"{repo} has no {path} at {ref}")
        return Excerpt(
            "github", repo, ref, path, 1, 2, "RETRIES = 2\nOLD = True", f"https://github.com/{repo}/blob/{ref}/{path}"
        )

    async def aclose(self):
        pass


async def test_read_source_reads_installed_files_and_other_versions_from_github(env, tmp_path):
    github = FakeGitHub()
    server, _ = librarian(env, None, tmp_path, library=Library(github=github, environ={}))
    data, is_error = await call(server, "read_source", {"target": "fakelib", "path": "fakelib/retry.py",
                                                        "start_line": 6, "end_line": 6})  # fmt: skip
    assert not is_error, data
    assert data["text"] == "6  DEFAULT_ATTEMPTS = 3" and data["version_or_ref"] == "1.2.0"
    total = len((env / ".venv/lib/python3.11/site-packages/fakelib/retry.py").read_text().splitlines())
    assert data["total_lines"] == total
    assert data["notes"] == [f"showing lines 6-6 of {total}; pass start_line=7 for more"]
    assert data["cost_usd"] == 0.0  # no model

    data, is_error = await call(server, "read_source", {"target": "fakelib", "path": "fakelib/retry.py",
                                                        "version": "1.0.0"})  # fmt: skip
    assert not is_error, data
    assert github.reads == [("acme/fakelib", "fakelib/retry.py", "v1.0.0")]
    assert data["source"] == "github" and data["url"].endswith("/blob/v1.0.0/fakelib/retry.py#L1-L2")
    assert "1.2.0 is installed" in data["notes"][0]

    text, is_error = await call(server, "read_source", {"target": "nosuchlib", "path": "x.py"})
    assert is_error and "not installed" in text


async def test_find_examples_finds_usages_not_definitions_and_says_github_needs_a_token(env, tmp_path):
    server, _ = librarian(env, None, tmp_path, library=Library(github=FakeGitHub(), environ={}))
    data, is_error = await call(server, "find_examples", {"symbol_or_snippet": "Retry(", "language": "python"})
    assert not is_error, data
    found = {(e["package_or_repo"], e["path"]) for e in data["examples"]}
    assert found == {("fakelib", "fakelib/client.py"), ("fakelib", "fakelib/retry.py"),
                     ("fakeuser", "fakeuser/__init__.py")}  # fmt: skip
    for example in data["examples"]:
        assert "Retry(" in example["text"] and "class Retry" not in example["text"]
    assert "GITHUB_TOKEN" in data["notes"][0]


async def test_research_tool_failures_reach_the_model_not_the_client(env, tmp_path, keys):
    turns = []

    def reply(request, model):
        turns.append(request)
        if len(turns) == 1:
            return ModelResponse(tool_calls=[ToolCall("a", "read_installed", {"package": "fakelib", "path": "../x"}),
                                             ToolCall("b", "no_such_tool", {})])  # fmt: skip
        return answer("Could not read it.", [])

    server, _ = librarian(env, FunctionModel(reply), tmp_path)
    _data, is_error = await call(server, "research", {"question": "Read fakelib's secret", "libraries": ["fakelib"]})
    assert not is_error
    results = [m for m in turns[1].messages if m.role == "tool"]
    assert [m.is_error for m in results] == [True, True]
    assert "unknown tool no_such_tool" in results[1].text


async def test_parallel_research_calls_share_one_server(env, tmp_path, keys):
    def reply(request, model):
        return answer("ok", [])

    server, _ = librarian(env, FunctionModel(reply), tmp_path)
    results = []

    async def one(i):
        async with Client(server) as client:
            results.append(await client.call_tool("research", {"question": f"q{i} about fakelib"}))

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(one, i)
    assert len(results) == 4 and not any(r.is_error for r in results)


async def test_research_over_github_cites_blob_urls_at_the_ref_it_read(env, tmp_path, keys):
    from tests.servers.test_librarian_github import CORE_PY, client
    from tests.servers.test_librarian_github import FakeGitHub as FakeAPI

    api = FakeAPI()
    thread = threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    turns = []

    def reply(request, model):
        turns.append(request)
        if len(turns) == 1:
            return ModelResponse(tool_calls=[
                ToolCall("a", "github_read", {"repo": "acme/widgets", "path": "src/widgets/core.py", "ref": "main"}),
                ToolCall("b", "github_releases", {"repo": "acme/widgets"}),
            ])  # fmt: skip
        eid, _ = evidence_id(request, "src/widgets/core.py", "def delays")
        line = line_of(request, eid, "return [self.backoff")
        return answer("Delays double [1].", [{"evidence": eid, "start_line": line, "end_line": line,
                                              "quote": "self.backoff * 2**n"}])  # fmt: skip

    try:
        github = client(api, tmp_path)
        server, _ = librarian(env, FunctionModel(reply), tmp_path, library=Library(github=github, environ={}))
        data, is_error = await call(server, "research", {"question": "How do widgets delays grow?",
                                                         "libraries": ["acme/widgets"]})  # fmt: skip
    finally:
        api.shutdown()
        api.server_close()
    assert not is_error, data
    releases = [m for m in turns[1].messages if m.role == "tool"][1]
    assert not releases.is_error and "releases/" in releases.text  # release notes are citable excerpts
    (cite,) = data["citations"]
    assert cite["source"] == "github" and cite["package_or_repo"] == "acme/widgets"
    assert cite["version_or_ref"] == "main"
    assert (
        cite["url"]
        == f"https://github.com/acme/widgets/blob/main/src/widgets/core.py#L{cite['start_line']}-L{cite['end_line']}"
    )
    assert "self.backoff * 2**n" in CORE_PY.split("\n")[cite["start_line"] - 1]
    assert "acme/widgets is not installed here, so it is read from GitHub" in data["notes"]
    assert not any(re.search(r"github_|clone_", note) for note in data["notes"])  # no tool the host cannot call


async def test_a_failing_model_still_returns_what_was_read(env, tmp_path, keys):
    from cadre_core.errors import AuthError

    turns = []

    def reply(request, model):
        turns.append(request)
        if len(turns) == 1:
            read = ToolCall("a", "read_installed", {"package": "fakelib", "path": "fakelib/client.py"})
            return ModelResponse(tool_calls=[read])
        raise AuthError("key revoked", provider="openai", model="gpt-5.2", env_var="OPENAI_API_KEY")

    server, _ = librarian(env, FunctionModel(reply), tmp_path)
    data, is_error = await call(server, "research", {"question": "How does the client retry?"})
    assert not is_error, data
    assert data["answer"] is None
    assert "fakelib/client.py" in [e["path"] for e in data["evidence"]]
    assert data["notes"][0].startswith("no synthesised answer") and "key revoked" in data["notes"][0]


class DownGitHub:
    has_token = False

    def __init__(self, error):
        self.error = error

    async def read_file(self, repo, path, ref=None, start_line=1, end_line=None):
        raise self.error

    async def aclose(self):
        pass


class FakeClones:
    def __init__(self):
        self.reads = []

    async def read(self, repo, path, *, ref=None, start_line=1, end_line=None):
        self.reads.append((repo, path, ref))
        return Excerpt("github", repo, ref or "main", path, 1, 1, "x = 1", f"https://github.com/{repo}/blob/abc/{path}")

    def close(self):
        pass


@pytest.mark.parametrize(
    ("error", "falls_back"),
    [
        (NetworkError("api.github.com timed out after 15 s"), True),
        (RateLimitedError("rate limit spent until 10:00 UTC"), True),
        (TooLargeError("'big.py' is 2.0 MB"), True),
        (SourceError("'src' is a folder; list it with github_tree"), False),
    ],
)
async def test_read_source_uses_a_clone_only_when_the_api_cannot_serve_the_file(env, tmp_path, error, falls_back):
    clones = FakeClones()
    library = Library(github=DownGitHub(error), clones=clones, environ={})
    server, _ = librarian(env, None, tmp_path, library=library)
    data, is_error = await call(server, "read_source", {"target": "acme/widgets", "path": "src/w.py"})
    if falls_back:
        assert not is_error and data["text"] == "1  x = 1"
        assert clones.reads == [("acme/widgets", "src/w.py", None)]
        assert "read from a shallow clone" in data["notes"][-1]
    else:
        assert is_error and "is a folder" in data and clones.reads == []


def host_only_librarian(env, tmp_path):
    """A librarian whose route is a keyless OpenAI model, then the host's model (MCP sampling)."""
    from cadre_core.models.sampling import SamplingModel

    server = create_server(root=env, library=Library(environ={}))
    config = make_config(librarian=["openai:gpt-5.2", "sampling:host"])
    wire_fake_models(server, {"openai:gpt-5.2": None, "sampling:host": SamplingModel()}, config=config, state=tmp_path)
    return server


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_without_a_key_the_host_model_answers_from_the_evidence_with_checked_citations(env, tmp_path, mode):
    import mcp_types as types

    server = host_only_librarian(env, tmp_path)
    prompts = []

    async def sampling(ctx, params):
        prompt = params.messages[-1].content.text
        prompts.append(prompt)
        head = HEADER.search(prompt)
        eid, start = head.group(1), int(head.group(3))
        first_line = prompt[head.end() :].split("\n")[1].strip().partition("  ")[2]
        body = {"answer": "See the retry module [1].", "citations": [
            {"evidence": eid, "start_line": start, "end_line": start, "quote": first_line or "x"}]}  # fmt: skip
        text = types.TextContent(type="text", text=json.dumps(body))
        return types.CreateMessageResult(role="assistant", model="host-llm", stop_reason="endTurn", content=text)

    async with Client(server, mode=mode, sampling_callback=sampling) as client:
        result = await client.call_tool(
            "research", {"question": "How does fakelib back off?", "libraries": ["fakelib"]}
        )
    data = result.structured_content
    assert not result.is_error, result.content
    assert len(prompts) == 1 and "fakelib 1.2.0 is installed" in prompts[0]
    assert data["model"] == "host" and data["answer"] == "See the retry module [1]."
    (cite,) = data["citations"]  # the host cited an id the tool's own evidence knows
    assert cite["package_or_repo"] == "fakelib" and cite["source"] == "local"


async def test_a_host_that_declines_sampling_still_gets_the_evidence(env, tmp_path):
    import mcp_types as types

    server = host_only_librarian(env, tmp_path)

    async def declining(ctx, params):
        return types.ErrorData(code=-1, message="user declined sampling")

    async with Client(server, mode="legacy", sampling_callback=declining) as client:
        result = await client.call_tool(
            "research", {"question": "How does fakelib back off?", "libraries": ["fakelib"]}
        )
    data = result.structured_content
    assert not result.is_error, result.content
    assert data["answer"] is None and data["evidence"][0]["package_or_repo"] == "fakelib"
    assert "declined" in data["notes"][0]


async def test_secrets_in_installed_code_never_reach_the_model(env, tmp_path, keys):
    secret = "AKIA" + "IOSFODNN7EXAMPLE"
    config_py = env / ".venv/lib/python3.11/site-packages/fakelib/config.py"
    config_py.write_text(f'AWS_KEY = "{secret}"\n')
    record = config_py.parent.parent / "fakelib-1.2.0.dist-info/RECORD"
    record.write_text(record.read_text() + "fakelib/config.py,,\n")
    seen = []

    def reply(request, model):
        seen.append(request)
        if len(seen) == 1:
            read = ToolCall("a", "read_installed", {"package": "fakelib", "path": "fakelib/config.py"})
            return ModelResponse(tool_calls=[read])
        return answer("It reads a key from config.", [])

    server, _ = librarian(env, FunctionModel(reply), tmp_path)
    _data, is_error = await call(server, "research", {"question": "Where is the AWS key?", "libraries": ["fakelib"]})
    assert not is_error
    shown = "\n".join(m.text for m in seen[-1].messages)
    assert "fakelib/config.py" in shown and secret not in shown


async def test_a_read_source_over_the_result_limit_is_paged_and_reads_back_whole(env, tmp_path):
    from mcp_types import ResourceLink

    wide = "".join(f"TABLE_{i} = {'0x1f, ' * 60!r}\n" for i in range(400))  # ~160k characters: over 20k tokens
    (env / ".venv/lib/python3.11/site-packages/fakelib/client.py").write_text(wide)
    server, _ = librarian(env, None, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("read_source", {"target": "fakelib", "path": "fakelib/client.py"})
        links = [b for b in result.content if isinstance(b, ResourceLink)]
        first = result.content[0].text
        pages = [first[: first.index("\n\n[Cadre: this result is")]]
        pages += [(await client.read_resource(str(link.uri))).contents[0].text for link in links]
    assert not result.is_error and len(links) >= 2
    assert result.structured_content["version_or_ref"] == "1.2.0" and "text" not in result.structured_content
    data = json.loads("".join(pages))
    assert data["text"].splitlines()[399] == f"400  TABLE_399 = {'0x1f, ' * 60!r}"


async def test_a_paged_result_stores_no_secret(env, tmp_path):
    from cadre_core.result_pages import default_results_path
    from tests.secret_corpus import corpus, leaks, notes_md
    from tests.servers.librarian_env import add_dist

    found = corpus()
    padding = "".join(f"PADDING_{i} = {'0x1f, ' * 250!r}\n" for i in range(50))  # ~76k characters
    text = padding + notes_md(found)
    assert len(text.splitlines()) <= 400  # read_source shows it whole: every secret reaches the result
    add_dist(env / ".venv/lib/python3.11/site-packages", "leaky", "0.1", {"leaky/notes.md": text})
    server, _ = librarian(env, None, tmp_path)
    async with Client(server) as client:
        result = await client.call_tool("read_source", {"target": "leaky", "path": "leaky/notes.md"})
    assert not result.is_error and result.structured_content["paged"]["pages"] >= 2
    store = default_results_path()
    stored = b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*")).decode("utf-8", "replace")
    assert "PADDING_49" in stored and "[REDACTED" in stored  # the pages are there, the secrets are not
    assert leaks(found, stored) == []
