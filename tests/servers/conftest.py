from __future__ import annotations

from pathlib import Path

import pytest

FILES = {
    "src/app/router.py": '''"""Routing of requests."""

class RetryPolicy:
    """Decides how often to retry."""

    def __init__(self, attempts: int = 3):
        self.attempts = attempts

    def should_retry(self, error: Exception) -> bool:
        return isinstance(error, TimeoutError)


def apply_retry_policy(policy: RetryPolicy, call):
    for attempt in range(policy.attempts):
        try:
            return call()
        except Exception as exc:
            if not policy.should_retry(exc):
                raise
''',
    "src/app/http_client.py": """import json


class HttpClient:
    def getUserName(self, user_id: int) -> str:
        return self.fetchJson(f"/users/{user_id}")["name"]

    def fetchJson(self, url: str) -> dict:
        raise ConnectionError("offline")
""",
    "src/app/parser.py": """def parse_header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    if not name:
        raise ValueError("empty header name")
    return name.strip().lower(), value.strip()
""",
    "src/web/widget.ts": (
        "export class Widget {\n  render(): string { return '<div/>' }\n}\n"
        "export const makeWidget = () => new Widget();\n"
    ),
    "tests/test_router.py": (
        "from app.router import RetryPolicy\n\ndef test_retry_policy():\n    assert RetryPolicy().attempts == 3\n"
    ),
    "README.md": "# Demo\n\nThe retry policy lives in the router.\n",
    "docs/notes.txt": "Nothing about code here.\n",
}


def make_repo(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or FILES).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def engine(repo: Path, tmp_path: Path):
    from cadre_search.engine import Engine

    eng = Engine(repo, index_path=tmp_path / "index.sqlite")
    yield eng
    if eng._index is not None:
        eng._index.close()
