"""Hostile arguments to real server processes over stdio: clear one-line errors, and the server keeps serving."""

import os
import sys

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.servers.conftest import make_repo

pytestmark = pytest.mark.anyio


def params(module: str, root) -> StdioServerParameters:
    # the SDK passes only a few variables (HOME, PATH, ...): keep the test's private cache and data dirs
    env = {k: os.environ[k] for k in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")}
    return StdioServerParameters(command=sys.executable, args=["-m", module, "--root", str(root)], env=env)


async def errors_of(client: Client, calls: list[tuple[str, dict]]) -> list[str]:
    texts = []
    for tool, args in calls:
        result = await client.call_tool(tool, args)
        assert result.is_error, (tool, result.content)
        texts.append(result.content[0].text)
    return texts


async def test_search_answers_hostile_arguments_with_clear_errors(tmp_path):
    repo = make_repo(tmp_path / "repo")
    async with Client(params("cadre_search", repo)) as client:
        texts = await errors_of(
            client,
            [
                ("find_symbol", {"name": "A" * 1_000_000}),
                ("search_codebase", {"query": "retry", "limit": "ten"}),
                ("search_codebase", {"query": "retry", "path": "x" * 4096}),
                ("search_codebase", {"query": "retry", "path": "src/\x00/etc/passwd"}),
            ],
        )
        still = await client.call_tool("find_symbol", {"name": "RetryPolicy"})
    assert texts[0].endswith("argument 'name': expected a string of at most 200 characters, got \"" + "A" * 59
                             + '… (1,000,002 characters)')  # fmt: skip
    assert texts[1].endswith("argument 'limit': expected an integer from 1 to 50, got \"ten\"")
    assert "a path or file name is too long for this system; pass a shorter path" in texts[2]
    assert "NUL byte" in texts[3]
    assert all("internal error" not in t and "\n" not in t and len(t) < 400 for t in texts)
    assert not still.is_error and still.structured_content["definitions"][0]["name"] == "RetryPolicy"


async def test_oracle_refuses_a_base_that_git_would_read_as_an_option(tmp_path):
    repo = make_repo(tmp_path / "repo")
    await anyio.run_process(["git", "init", "-q"], cwd=repo)  # a real repository, where git would write
    written = tmp_path / "written-by-git"
    async with Client(params("cadre_oracle", repo)) as client:
        texts = await errors_of(
            client,
            [
                ("review_change", {"base": f"--output={written}"}),
                ("review_change", {"base": "B" * 201}),
                ("consult_oracle", {"question": "q", "files": ["x" * 5000]}),
            ],
        )
    assert "is not a git ref; pass a branch, tag or commit" in texts[0] and not written.exists()
    assert "argument 'base': expected a string of at most 200 characters" in texts[1]
    assert "argument 'files[0]': expected a string of at most 4,096 characters" in texts[2]
    assert all("internal error" not in t and len(t) < 400 for t in texts)
