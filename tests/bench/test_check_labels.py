"""bench/search/check_labels.py against a throw-away git repository built in the test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "search"))

import check_labels

CORE_BEFORE = '''"""Widgets."""


def render_page(x):
    return x


class Widget:
    def draw(self):
        return 1
'''
CORE_AFTER = CORE_BEFORE.replace("return x", "return x or ''")


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def _write(repo: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> dict[str, str | Path]:
    """A repo whose second commit fixes pkg/core.py (render_page) and its test."""
    root = tmp_path / "widgets"
    root.mkdir()
    _git(root, "init", "-q")
    _write(root, {"pkg/__init__.py": "", "pkg/core.py": CORE_BEFORE, "tests/test_core.py": "def test(): pass\n"})
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "start")
    parent = _git(root, "rev-parse", "HEAD")
    _write(root, {"pkg/core.py": CORE_AFTER, "tests/test_core.py": "def test(): assert 1\n"})
    _git(root, "commit", "-qam", "fix empty pages")
    return {"git_dir": root / ".git", "parent": parent, "commit": _git(root, "rev-parse", "HEAD")}


def _row(fixture: dict[str, str | Path], **changes: object) -> dict[str, object]:
    commit = str(fixture["commit"])
    row = {
        "id": f"widgets-{commit[:10]}-prose",
        "repo": "acme/widgets",
        "commit": commit,
        "parent": fixture["parent"],
        "query": "Rendering an empty page shows None instead of nothing.",
        "gold": ["pkg/core.py"],
        "kind": "prose",
        "source": f"written from fix {commit}",
    }
    row.update(changes)
    return row


def test_a_correct_row_passes(repo):
    assert check_labels.check_row(_row(repo), repo["git_dir"]) == []


def test_an_issue_url_of_the_same_repo_is_a_valid_source(repo):
    ok = _row(repo, source="https://github.com/acme/widgets/issues/12")
    other = _row(repo, source="https://github.com/someone/else/issues/12")
    assert check_labels.check_row(ok, repo["git_dir"]) == []
    assert any("source" in p for p in check_labels.check_row(other, repo["git_dir"]))


def test_naming_a_changed_function_is_a_leak_unless_allowed_with_a_reason(repo):
    leaky = _row(repo, query="render_page returns None for an empty page")
    assert any("'render_page'" in p for p in check_labels.check_row(leaky, repo["git_dir"]))
    allowed = dict(leaky, allow=[{"name": "render_page", "reason": "in the user's traceback"}])
    assert check_labels.check_row(allowed, repo["git_dir"]) == []
    no_reason = dict(leaky, allow=[{"name": "render_page", "reason": " "}])
    assert any("reason" in p for p in check_labels.check_row(no_reason, repo["git_dir"]))


def test_an_allow_entry_for_a_name_not_leaked_is_reported(repo):
    row = _row(repo, allow=[{"name": "Widget", "reason": "public class"}])
    assert any("does not leak" in p for p in check_labels.check_row(row, repo["git_dir"]))


def test_unchanged_definitions_of_a_gold_file_may_be_named(repo):
    row = _row(repo, query="Widget.draw() is fine but pages render None when empty")
    assert check_labels.check_row(row, repo["git_dir"]) == []


@pytest.mark.parametrize(
    ("query", "leaks"),
    [
        ("the core of the problem is an empty page", False),  # the module name as an English word
        ("see pkg/core.py", True),  # the path
        ("from pkg.core import something", True),  # dotted module
        ("`core` misbehaves", True),  # written as code
    ],
)
def test_a_plain_word_module_name_leaks_only_when_written_as_code(repo, query, leaks):
    problems = check_labels.check_row(_row(repo, query=query), repo["git_dir"])
    assert any("from the gold files" in p for p in problems) is leaks


def test_history_and_gold_are_checked_against_git(repo):
    wrong_parent = _row(repo, parent=repo["commit"])
    assert any("first parent" in p for p in check_labels.check_row(wrong_parent, repo["git_dir"]))
    untouched = _row(repo, gold=["pkg/__init__.py"])
    assert any("not modified" in p for p in check_labels.check_row(untouched, repo["git_dir"]))
    test_file = _row(repo, gold=["tests/test_core.py"])
    assert any("non-test library" in p for p in check_labels.check_row(test_file, repo["git_dir"]))
    missing = _row(repo, commit="f" * 40, id="widgets-ffffffffff-prose")
    assert any("not found" in p for p in check_labels.check_row(missing, repo["git_dir"]))


def test_swe_bench_repositories_are_refused(repo):
    row = _row(repo, repo="psf/requests", id=f"requests-{str(repo['commit'])[:10]}-prose")
    assert any("SWE-bench" in p for p in check_labels.check_row(row, None))


def test_main_reports_duplicate_ids_and_exits_1(repo, tmp_path, capsys):
    data = tmp_path / "prose" / "acme+widgets.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(_row(repo)) for _ in range(2)) + "\n")
    git_map = f"acme/widgets={repo['git_dir']}"
    assert check_labels.main([str(data.parent), "--repo-map", git_map]) == 1
    assert "duplicate id" in capsys.readouterr().out
    data.write_text(json.dumps(_row(repo)) + "\n")
    assert check_labels.main([str(data.parent), "--repo-map", git_map]) == 0


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("click/core.py", {"core"}),
        ("src/click/_termui_impl.py", {"_termui_impl"}),
        ("httpx/_transports/__init__.py", {"_transports"}),
        ("httpx/__init__.py", set()),  # the library's own name is not a leak
        ("src/jinja2/__init__.py", set()),
    ],
)
def test_module_names_of_gold_files(path, names):
    assert check_labels.module_names(path) == names
