"""`cadre eval` as a user runs it: a real process, the real OpenAI SDK, a loopback fake Responses API."""

import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

from tests.e2e.loopback import send_json, serving

SUITE = """name = "tiny"
role = "search"

[[tasks]]
id = "purge"
prompt = "where are expired sessions deleted?"
check = { type = "regex", pattern = "auth/sessions\\\\.py" }

[tasks.files]
"auth/sessions.py" = "def purge_expired(db):\\n    return db.delete('sessions')\\n"
"auth/tokens.py" = "def new_token():\\n    return 'x'\\n"
"""


class FakeResponses(BaseHTTPRequestHandler):
    """Answers every deep search at once; `gpt-5.2` names the right file, `gpt-5-mini` a wrong one."""

    models: ClassVar[list[str]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeResponses.models.append(body["model"])
        where = "auth/sessions.py:1" if body["model"] == "gpt-5.2" else "auth/tokens.py:1"
        send_json(self, {
            "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": body["model"],
            "error": None, "incomplete_details": None,
            "output": [{"type": "message", "id": "m", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": f"It is in {where}.", "annotations": []}]}],
            "usage": {"input_tokens": 500, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 520},
        })  # fmt: skip

    def log_message(self, *args):
        return


def test_cadre_eval_scores_two_models_through_the_real_sdk_and_promotes_the_winner(tmp_path):
    FakeResponses.models = []
    (tmp_path / "suite.toml").write_text(SUITE)
    config = tmp_path / ".cadre.toml"
    config.write_text('[roles.search]\n# the fast route\ncandidates = [{ model = "openai:gpt-5-mini" }]\n')
    with serving(FakeResponses) as url:
        env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CONFIG_HOME": str(tmp_path / "c"),
               "XDG_CACHE_HOME": str(tmp_path / "x"), "PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-test",
               "OPENAI_BASE_URL": url}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "cadre_app.cli", "--root", str(tmp_path), "eval", "search",
             "--models", "openai:gpt-5.2,openai:gpt-5-mini", "--suite", str(tmp_path / "suite.toml"),
             "--repeat", "2", "--json", "--promote", "--margin", "0.5", "--config", str(config)],
            capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {r["model"]: r for r in report["models"]}
    assert rows["openai:gpt-5.2"]["passed"] == 2 and rows["openai:gpt-5-mini"]["passed"] == 0
    assert rows["openai:gpt-5.2"]["avg_cost_usd"] > 0
    assert sorted(set(FakeResponses.models)) == ["gpt-5-mini", "gpt-5.2"]
    text = config.read_text()
    assert text.index("openai:gpt-5.2") < text.index("openai:gpt-5-mini") and "# the fast route" in text
