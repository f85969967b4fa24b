"""The README's commands, as a new user types them: every `cadre` line parses, every flag in a synopsis
exists, and the "First questions" block runs in this repository and answers."""

import importlib
import json
import re
import shlex
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar

import pytest

from tests.e2e.loopback import send_json, serving

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text("utf-8")
CADRE = Path(sys.executable).parent / "cadre"


def code_lines(text: str) -> list[str]:
    """Lines of the README's ```bash blocks, comments dropped."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def parser():
    """The parser behind the installed `cadre` console script, wherever its module lives."""
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "cadre"]
    return importlib.import_module(script.module).build_parser()


CADRE_LINES = [line for line in code_lines(README) if line.startswith("cadre ")]


def test_the_readme_has_commands_to_check():
    assert len(CADRE_LINES) >= 10
    assert {shlex.split(line)[1] for line in CADRE_LINES} >= {"doctor", "search", "call", "cost", "install"}


@pytest.mark.parametrize("line", CADRE_LINES)
def test_every_cadre_line_parses(line):
    parser().parse_args(shlex.split(line)[1:])  # argparse exits (a failure here) on an unknown flag


def test_the_setup_commands_are_what_ci_runs():
    setup = code_lines(section("Setup: two commands"))
    assert len(setup) == 2 and setup[0].endswith("uv run cadre up") and setup[1].endswith("uv run pytest")
    assert setup[1] in (REPO / ".ci" / "run").read_text("utf-8")


SYNOPSES = re.findall(r"^- `cadre ([^`]*)`", section("Commands"), re.M)


def subcommand(synopsis: str) -> list[str]:
    """The leading lower-case words of a synopsis: `registry export [--out DIR]` -> registry, export."""
    words = []
    for word in synopsis.split():
        if not re.fullmatch(r"[a-z]+", word):
            break
        words.append(word)
    return words


def test_every_flag_in_the_commands_list_exists(capsys):
    assert {subcommand(s)[0] for s in SYNOPSES} >= {"doctor", "config", "cost", "eval", "trace", "search", "up",
                                                    "install", "registry", "call"}  # fmt: skip
    for synopsis in SYNOPSES:
        with pytest.raises(SystemExit):
            parser().parse_args([*subcommand(synopsis), "--help"])
        help_text = capsys.readouterr().out
        for flag in re.findall(r"--[a-z][a-z-]*", synopsis):
            assert flag in help_text, f"`cadre {synopsis}` documents {flag}, but its --help does not list it"


class SchemaShapedOpenAI(BaseHTTPRequestHandler):
    """The Responses API on loopback, answering each structured request with a minimal valid instance
    (https://platform.openai.com/docs/api-reference/responses/object)."""

    calls: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        SchemaShapedOpenAI.calls.append(body)
        schema = body.get("text", {}).get("format", {}).get("schema", {})
        properties = set(schema.get("properties", {}))
        if properties == {"answer", "citations"}:  # the librarian's research answer
            answer = {"answer": "A capacity limiter of 40 tokens bounds the worker threads.", "citations": []}
        elif "findings" in properties:
            answer = {"summary": "One risk.", "findings": [{"severity": "minor", "path": "README.md", "line": 1,
                      "title": "Typo", "explanation": "A word is misspelt.", "suggestion": "Fix it."}]}  # fmt: skip
        else:
            answer = {"answer": "Only one call takes the probe.", "key_points": ["probe"], "risks": [],
                      "next_steps": [], "confidence": "high", "citations": []}  # fmt: skip
        send_json(self, {
            "id": "resp_1", "object": "response", "created_at": 1, "status": "completed", "model": body["model"],
            "error": None, "incomplete_details": None, "output": [
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": json.dumps(answer), "annotations": []}]}],
            "usage": {"input_tokens": 900, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 60,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 960}})  # fmt: skip

    def log_message(self, *args):
        return


@pytest.mark.timeout(300)  # ten processes, each a cold start; research reads anyio's installed source
def test_the_first_questions_run_here_and_answer(tmp_path):
    home = tmp_path / "home"
    (home / "code" / "your-project").mkdir(parents=True)
    env = {"HOME": str(home), "PATH": f"{CADRE.parent}:/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "CADRE_SEARCH_INDEX_DIR": str(tmp_path / "index")}  # fmt: skip
    parent = subprocess.run(["git", "-C", str(REPO), "rev-parse", "-q", "--verify", "HEAD~1"], capture_output=True)
    if parent.returncode:
        pytest.skip("a shallow clone has no HEAD~1 for review_change")
    lines = code_lines(section("First questions"))
    assert lines[0] == "source .venv/bin/activate"
    SchemaShapedOpenAI.calls = []
    with serving(SchemaShapedOpenAI) as url:
        env |= {"OPENAI_API_KEY": "sk-readme-test", "OPENAI_BASE_URL": url}
        for line in lines[1:]:
            argv = [a.replace("~", str(home), 1) if a.startswith("~") else a for a in shlex.split(line)]
            done = subprocess.run([str(CADRE), *argv[1:]], cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
            assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
            assert done.stdout.strip(), line
            if "--json" in argv:
                result = json.loads(done.stdout)
                assert "error" not in result, line
    assert len(SchemaShapedOpenAI.calls) >= 2  # the oracle's two tools reached the model
