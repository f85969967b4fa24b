"""find_examples: GitHub code search next to the local scan, and what each does when it cannot answer."""

import threading
import time

import anyio
import pytest

from cadre_librarian import examples
from cadre_librarian.examples import find_examples, scan_installed
from cadre_librarian.installed import Installed
from cadre_librarian.library import Library
from cadre_librarian.sources import Excerpt
from tests.servers.librarian_env import make_env, make_tricky_env

pytestmark = pytest.mark.anyio

BLOB = "https://github.com/acme/widgets/blob/0123456789abcdef0123456789abcdef01234567/src/widgets/core.py"


class FakeGitHub:
    """Code search that answers with `hits`, raises `error`, or never answers (`hang`)."""

    has_token = True

    def __init__(self, hits=(), error=None, hang=False):
        self.hits, self.error, self.hang = list(hits), error, hang

    async def search_code(self, query, *, repo=None, language=None, limit=10):
        if self.hang:
            await anyio.sleep(60)
        if self.error:
            raise self.error
        return self.hits[:limit]

    async def aclose(self):
        pass


@pytest.fixture
def installed(tmp_path):
    return Installed([make_env(tmp_path / "ws")], environ={})


def placed():
    return Excerpt("github", "acme/widgets", "0123456", "src/widgets/core.py", 3, 5, "a\nretry_call(f)\nb",
                   url=f"{BLOB}#L3-L5")  # fmt: skip


def unplaced():
    base = Excerpt("github", "acme/widgets", None, "src/widgets/other.py", 1, 2, "x = 1\nretry_call(g)", url=BLOB)
    return Excerpt(**{**base.__dict__, "extra": {"located": False, "why": "the hit names no commit"}})


async def test_fragments_github_could_not_place_have_no_lines_and_no_anchor(installed):
    library = Library(github=FakeGitHub([placed(), unplaced()]), environ={})
    data = await find_examples(library, installed, symbol_or_snippet="retry_call(", language="python")
    first, second = data["examples"][:2]
    assert (first["start_line"], first["end_line"], first["url"]) == (3, 5, f"{BLOB}#L3-L5")
    assert first["text"].split("\n")[1] == "4  retry_call(f)"
    assert (second["start_line"], second["end_line"], second["url"]) == (None, None, BLOB)
    assert second["text"] == "x = 1\nretry_call(g)" and second["notes"] == ["lines unknown; read the file to cite it"]
    assert data["github"] == 2 and data["local"] == 2


async def test_a_github_search_that_never_answers_leaves_the_local_examples(installed, monkeypatch):
    monkeypatch.setattr(examples, "GITHUB_SECONDS", 0.3)
    library = Library(github=FakeGitHub(hang=True), environ={})
    started = time.monotonic()
    data = await find_examples(library, installed, symbol_or_snippet="retry_call(", language="python")
    assert time.monotonic() - started < 5
    assert sorted(e["path"] for e in data["examples"]) == ["fakelib/client.py", "fakelib/retry.py"]
    assert "no answer within 0.3 s" in data["notes"][0]


@pytest.mark.parametrize("error", [ValueError("Expecting value: line 1 column 1"), OSError("connection reset")])
async def test_unexpected_github_failures_become_a_note(installed, error):
    library = Library(github=FakeGitHub(error=error), environ={})
    data = await find_examples(library, installed, symbol_or_snippet="retry_call(", language="python")
    assert data["local"] == 2 and data["github"] == 0
    assert type(error).__name__ in data["notes"][0] and str(error) in data["notes"][0]


async def test_a_cancelled_call_does_not_wait_for_the_local_scan(installed, monkeypatch):
    release = threading.Event()

    def slow_scan(*args):
        release.wait(10)
        return [], []

    monkeypatch.setattr(examples, "scan_installed", slow_scan)
    library = Library(github=FakeGitHub(), environ={})
    started = time.monotonic()
    try:
        with anyio.move_on_after(0.3):
            await find_examples(library, installed, symbol_or_snippet="retry_call(", language="python")
        assert time.monotonic() - started < 3
    finally:
        release.set()


async def test_the_local_scan_labels_namespace_and_symlinked_files_by_their_owner(tmp_path):
    installed = Installed([make_tricky_env(tmp_path / "ws")], environ={})
    found, notes = scan_installed(installed, "RETRY_DEADLINE", "python", 10)
    assert {(e.package_or_repo, e.path) for e in found} == {
        ("nsa-two", "nsa/two/deadline.py"),
        ("nsa-two", "nsa/util.py"),
    }
    found, notes = scan_installed(installed, "Pool(", "python", 10)
    site = tmp_path / "ws/.venv/lib/python3.11/site-packages"
    assert [(e.package_or_repo, e.path, e.url) for e in found] == [
        ("symlib", "symlib/core.py", f"{(site / 'symlib/core.py').as_uri()}#L4-L7")
    ]
    assert notes == []
