"""No secret leaves, on any tool path: a corpus of 30+ formats planted in a workspace (in ordinary files and
as secret files, tracked in git), pushed through every tool by a scripted hostile model that asks for those
files, their line ranges and greps for key bodies. Nothing of a secret may reach the model's requests (what a
provider would be sent: the FunctionModel stands where the provider's SDK call is) or a tool result returned
to the host."""

from __future__ import annotations

import json
import os
import subprocess

import anyio
import pytest
from mcp import Client

from cadre_core.models.base import ModelResponse, ToolCall, Usage
from cadre_core.models.test import FunctionModel
from cadre_core.testing import wire_fake_models
from tests.core.conftest import make_config
from tests.secret_corpus import config_yaml, corpus, leaks, notes_md, secret_files
from tests.servers.conftest import make_repo
from tests.servers.librarian_env import add_dist, make_env

pytestmark = pytest.mark.anyio
FOUND = corpus()
ORDINARY = "Ordinary text the tools must still show."


def settings_py() -> str:
    """Code that keeps secrets in string literals, one per line, as people do."""
    lines = ['"""Settings."""', ""]
    lines += [f"S{i} = {json.dumps(s.text)}" for i, s in enumerate(FOUND) if "\n" not in s.text]
    return "\n".join(lines) + "\n"


def planted_files() -> dict[str, str]:
    return {
        "notes.md": notes_md(FOUND),
        "config.yaml": config_yaml(FOUND),
        "app/settings.py": settings_py(),
        "app/main.py": "from app.settings import S0\n\n\ndef main():\n    return S0\n",
        **secret_files(FOUND),
    }


def git(root, *args):
    subprocess.run(["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t", *args], check=True,
                   capture_output=True)  # fmt: skip


@pytest.fixture
def workspace(tmp_path):
    """Every planted file tracked in git, then changed: `git diff HEAD` would show every secret."""
    files = planted_files()
    root = make_repo(tmp_path / "ws", dict.fromkeys(files, "placeholder\n"))
    git(root, "init", "-q")
    git(root, "add", "-A", "-f")
    git(root, "commit", "-qm", "init")
    make_repo(root, files)
    return root


class Log:
    """Everything a provider was sent and everything the host got back."""

    def __init__(self):
        self.sent: list[str] = []
        self.returned: list[str] = []
        self.tool_results: dict[str, str] = {}

    def request(self, request) -> None:
        self.sent.append(request.system or "")
        for message in request.messages:
            if message.role != "assistant":  # what the model wrote itself (its tool calls) is not a leak
                self.sent.append(message.text)
            if message.role == "tool":
                self.tool_results[message.tool_call_id] = message.text

    def result(self, result) -> None:
        self.returned += [getattr(c, "text", "") for c in result.content]

    def assert_clean(self) -> None:
        assert self.sent and self.returned
        for where, texts in (("the provider", self.sent), ("the host", self.returned)):
            found = leaks(FOUND, "\n".join(texts))
            lines = [line for t in texts for line in t.split("\n") if any(f.split(": ")[1] in line for f in found)]
            assert not found, f"a secret reached {where}: {found[:3]} in {lines[:3]}"


def line_ranges(text: str, width: int = 3):
    """(start, end) windows over every line of a file, so each key body line is asked for in a range."""
    total = text.count("\n") + 1
    return [(start, start + width - 1) for start in range(1, total + 1, width)]


def hostile_oracle_calls() -> list[ToolCall]:
    files = planted_files()
    calls = [ToolCall(f"r-{name}", "read_file", {"path": name}) for name in files]
    calls += [
        ToolCall(f"n-{a}", "read_file", {"path": "notes.md", "start_line": a, "end_line": b})
        for a, b in line_ranges(files["notes.md"])
    ]
    patterns = [r"^[A-Za-z0-9+/]{16,}={0,2}$", "[A-Za-z0-9+/]{20}", "AKIA", "sk[-_]", "PASSWORD", "password", "token",
                "BEGIN", "=", ":", "private_key"]  # fmt: skip
    calls += [ToolCall(f"g{i}-{f}", "grep", {"pattern": p, "path": f}) for i, p in enumerate(patterns) for f in files]
    calls += [ToolCall(f"l-{d}", "list_dir", {"path": d}) for d in (".", ".aws", "certs", "deploy")]
    return calls


def oracle_answer() -> ModelResponse:
    body = {"answer": "Done.", "key_points": [], "risks": [], "next_steps": [], "confidence": "low", "citations": []}
    return ModelResponse(text=json.dumps(body), usage=Usage(input_tokens=10, output_tokens=5))


def oracle_server(root, tmp_path, log: Log, calls: list[ToolCall] | None = None):
    from cadre_oracle.server import create_server

    calls = calls or hostile_oracle_calls()
    batches = [calls[: len(calls) // 2], calls[len(calls) // 2 :]]

    def reply(request, model):
        log.request(request)
        if request.output_schema and "findings" in json.dumps(request.output_schema):
            return ModelResponse(text=json.dumps({"summary": "ok", "findings": []}), usage=Usage(10, 0, 0, 5))
        turn = sum(1 for m in request.messages if m.role == "assistant")
        if request.tools and request.tools_allowed and turn < len(batches):
            return ModelResponse(tool_calls=batches[turn], finish_reason="tool_use", usage=Usage(input_tokens=10))
        if not request.output_schema:
            return "Both agree."
        return oracle_answer()

    models = {m: FunctionModel(reply) for m in ("openai:gpt-5.2", "anthropic:claude-sonnet-4-5")}
    server = create_server(root=root)
    wire_fake_models(server, models, config=make_config(oracle=list(models), review=["openai:gpt-5.2"]), state=tmp_path)
    return server


async def test_the_oracle_tools_leak_nothing(workspace, tmp_path, keys):
    log = Log()
    server = oracle_server(workspace, tmp_path, log)
    asked = ["**/*", *planted_files()]
    async with Client(server) as client:
        consult = await client.call_tool("consult_oracle", {"question": "Print every secret.", "files": asked})
        review = await client.call_tool("review_change", {"focus": "show the keys"})
        opinions = await client.call_tool("second_opinions", {"question": "Secrets?", "files": asked, "n": 2})
    for result in (consult, review, opinions):
        assert not result.is_error, result.content
        log.result(result)
    log.assert_clean()
    # the reads really happened and showed the ordinary text around the secrets
    results = log.tool_results
    assert ORDINARY in results["r-notes.md"] and "[REDACTED" in results["r-notes.md"]
    assert "secret file" in results["r-.env"] and "secret file" in results["r-id_rsa"]
    assert "secret file" in results["r-gcp-demo-3f9a.json"]  # refused by its shape
    assert "no matches" in results["g2-notes.md"]  # AKIA only matched inside a secret: nothing to show
    assert "DB_PASSWORD=[REDACTED secret]" in results["g4-notes.md"]  # a hit around a secret, shown redacted
    sent = "\n".join(log.sent)
    assert "+# Ops notes" in sent  # review_change sent the diff of notes.md
    assert "diff --git a/.env" not in sent and "diff --git a/deploy_key" not in sent
    assert "diff --git a/gcp-demo-3f9a.json" not in sent
    assert ".aws" not in results["l-."].split("\n") and ".env" not in results["l-."].split("\n")


def search_server(root, tmp_path, log: Log, calls: list[ToolCall] | None = None):
    from cadre_search.server import create_server

    calls = calls or hostile_search_calls()

    def reply(request, model):
        log.request(request)
        if not any(m.role == "tool" for m in request.messages):
            return ModelResponse(tool_calls=calls, finish_reason="tool_use", usage=Usage(input_tokens=10))
        return ModelResponse(text="See notes.md:1.", usage=Usage(input_tokens=10, output_tokens=5))

    server = create_server(root=root)
    config = make_config(search=["google:gemini-3-flash-preview"])
    model = FunctionModel(reply, model_name="gemini-3-flash-preview")
    wire_fake_models(server, model, config=config, state=tmp_path / "search")
    return server


def hostile_search_calls() -> list[ToolCall]:
    files = planted_files()
    calls = [ToolCall(f"s-{q}", "search", {"query": q})
             for q in ("DB_PASSWORD", "aws_secret_access_key", "BEGIN PRIVATE KEY", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
                       "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "sk_live", "token password secret")]  # fmt: skip
    calls += [ToolCall(f"r-{name}", "read_span", {"path": name}) for name in files]
    calls += [ToolCall(f"n-{a}", "read_span", {"path": "notes.md", "start_line": a, "end_line": b})
              for a, b in line_ranges(files["notes.md"], 2)]  # fmt: skip
    calls += [ToolCall(f"f-{n}", "find_symbol", {"name": n}) for n in ("S1", "DB_PASSWORD", "password", "token")]
    return [*calls, ToolCall("l", "list_dir", {"path": "."})]


async def test_search_fast_deep_and_find_symbol_leak_nothing(workspace, tmp_path, keys):
    log = Log()
    queries = ["DB_PASSWORD secret", "BEGIN PRIVATE KEY", "aws_secret_access_key", "sk_live token", "Authorization"]
    async with Client(search_server(workspace, tmp_path, log)) as client:
        for query in queries:
            log.result(await client.call_tool("search_codebase", {"query": query, "limit": 50}))
        for name in ("S1", "S20", "DB_PASSWORD", "password", "token"):
            log.result(await client.call_tool("find_symbol", {"name": name}))
        deep = await client.call_tool("search_codebase", {"query": "where are the keys?", "mode": "deep"})
    log.result(deep)
    assert not deep.is_error and deep.structured_content["mode"] == "deep", deep.content
    log.assert_clean()
    results = log.tool_results
    assert ORDINARY in results["r-notes.md"] and "[REDACTED" in "\n".join(results.values())
    assert "secret file" in results["r-.env"] and "secret file" in results["r-gcp-demo-3f9a.json"]
    hits = json.loads(log.returned[0])["hits"]
    assert {h["path"] for h in hits} >= {"notes.md", "config.yaml"}  # found, and shown redacted
    assert not {".env", "id_rsa", "gcp-demo-3f9a.json", "deploy_key"} & {h["path"] for h in hits}


@pytest.fixture
def leaky_env(tmp_path):
    root = make_env(tmp_path / "lib")
    site = root / ".venv/lib/python3.11/site-packages"
    files = {f"leaky/{name}": text for name, text in planted_files().items() if "/" not in name}
    add_dist(site, "leaky", "1.0", {"leaky/__init__.py": '"""Leaky."""\n', "leaky/settings.py": settings_py(), **files})
    return root


async def test_the_librarian_leaks_nothing(leaky_env, tmp_path, keys):
    from cadre_librarian.library import Library
    from cadre_librarian.server import create_server

    log = Log()
    names = ["settings.py", "notes.md", "config.yaml", ".env", "id_rsa", "gcp-demo-3f9a.json", "deploy_key"]
    calls = [ToolCall(f"r-{n}", "read_installed", {"package": "leaky", "path": f"leaky/{n}"}) for n in names]
    ranges = line_ranges(notes_md(FOUND), 5)
    notes = {"package": "leaky", "path": "leaky/notes.md"}
    calls += [ToolCall(f"n-{a}", "read_installed", {**notes, "start_line": a, "end_line": b}) for a, b in ranges]
    calls += [ToolCall(f"s-{q}", "search_installed", {"package": "leaky", "query": q})
              for q in ("password secret token", "BEGIN PRIVATE KEY", "sk_live")]  # fmt: skip

    def reply(request, model):
        log.request(request)
        if request.tools_allowed and not any(m.role == "tool" for m in request.messages):
            return ModelResponse(tool_calls=calls, finish_reason="tool_use", usage=Usage(input_tokens=10))
        return ModelResponse(text=json.dumps({"answer": "Nothing.", "citations": []}), usage=Usage(10, 0, 0, 5))

    server = create_server(root=leaky_env, library=Library(environ={}))
    config = make_config(librarian=["openai:gpt-5.2"])
    wire_fake_models(server, FunctionModel(reply), config=config, state=tmp_path)
    async with Client(server) as client:
        research = await client.call_tool("research", {"question": "What secrets?", "libraries": ["leaky"]})
        assert not research.is_error, research.content
        log.result(research)
        for name in names:
            for lines in ({}, {"start_line": 20, "end_line": 60}):
                args = {"target": "leaky", "path": f"leaky/{name}", **lines}
                log.result(await client.call_tool("read_source", args))
        for needle in ("password", "sk_live_", "DB_PASSWORD", "S1 = "):
            log.result(await client.call_tool("find_examples", {"symbol_or_snippet": needle, "language": "python"}))
    log.assert_clean()
    results = log.tool_results
    assert ORDINARY in results["r-notes.md"]
    assert "secret file" in results["r-.env"] and "secret file" in results["r-gcp-demo-3f9a.json"]
    examples = [json.loads(r) for r in log.returned if '"examples"' in r]
    assert any(e["local"] and "[REDACTED" in json.dumps(e["examples"]) for e in examples)  # found, redacted


async def test_a_fifo_hangs_no_reader_and_a_50_mb_file_reads_fast(tmp_path, keys):
    """A FIFO is never opened: no reader blocks on it (packing, read_file, grep, read_span, indexing). A 50 MB
    log is skipped whole and read by line range without being loaded."""
    root = make_repo(tmp_path / "ws", {"app.py": "def main():\n    return 1\n", "README.md": "# Demo\n"})
    os.mkfifo(root / "pipe.md")
    os.mkfifo(root / "pipe.py")
    os.mkfifo(root / ".gitignore")  # read by every walker's ignore rules
    with (root / "big.log").open("w") as f:
        f.write("a line of an ordinary log, long enough to add up\n" * 1_000_000)
    oracle_log, search_log = Log(), Log()
    reads = [ToolCall("r", "read_file", {"path": "pipe.md"}), ToolCall("g", "grep", {"pattern": "main"}),
             ToolCall("g2", "grep", {"pattern": "x", "path": "pipe.py"}),
             ToolCall("b", "read_file", {"path": "big.log", "start_line": 500_000, "end_line": 500_004})]  # fmt: skip
    spans = [ToolCall("r", "read_span", {"path": "pipe.md"}), ToolCall("s", "search", {"query": "main"}),
             ToolCall("b", "read_span", {"path": "big.log", "start_line": 900_000, "end_line": 900_004})]  # fmt: skip
    with anyio.fail_after(30):
        async with Client(oracle_server(root, tmp_path, oracle_log, reads)) as client:
            consult = await client.call_tool("consult_oracle", {"question": "q", "files": ["**/*", "pipe.md"]})
        async with Client(search_server(root, tmp_path, search_log, spans)) as client:
            deep = await client.call_tool("search_codebase", {"query": "main", "mode": "deep"})
    assert not consult.is_error and not deep.is_error, (consult.content, deep.content)
    notes = consult.structured_content["notes"]
    assert "3 skipped (missing or not a regular file): .gitignore, pipe.md, pipe.py" in notes
    assert "big.log skipped: larger than 1 MB" in notes
    assert "lines 500000-500004 of a file over 1 MB" in oracle_log.tool_results["b"]
    assert search_log.tool_results["b"].count("a line of an ordinary log") == 5
    assert "not a file" in oracle_log.tool_results["r"] and "app.py:1: def main():" in oracle_log.tool_results["g"]
    assert "not a file" in search_log.tool_results["r"]
    assert deep.structured_content["index"]["files"] == 2  # app.py and README.md; the FIFOs are not indexed
