"""Nothing outside the workspace is read, whatever git or the layout of folders would allow."""

import json

import anyio
import pytest
from mcp import Client

from cadre_core.models.base import ModelResponse, Usage
from cadre_core.models.test import FunctionModel
from tests.servers.test_oracle_server import oracle

pytestmark = pytest.mark.anyio


async def test_review_change_diffs_only_the_workspace_not_the_enclosing_repository(tmp_path, keys):
    # the workspace is a folder of a bigger checkout (a monorepo, or a home folder kept in git)
    repo, ws = tmp_path / "repo", tmp_path / "repo" / "service"
    ws.mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    (repo / "outside.txt").write_text("before\n")
    (ws / "inside.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        await anyio.run_process([*git, *args])
    (repo / "outside.txt").write_text("OUTSIDE_THE_WORKSPACE\n")
    (ws / "inside.py").write_text("x = 2\n")
    seen = []

    def reply(request, model):
        seen.append(request.messages[0].text)
        return ModelResponse(text=json.dumps({"summary": "ok", "findings": []}), usage=Usage(10, 10))

    models = {"openai:gpt-5.2": FunctionModel(reply)}
    server, _ = oracle(ws, models, tmp_path, roles={"review": list(models)})
    async with Client(server) as client:
        result = await client.call_tool("review_change", {})
    assert not result.is_error, result.content
    assert "+x = 2" in seen[0]
    assert "OUTSIDE_THE_WORKSPACE" not in seen[0] and "outside.txt" not in seen[0]
