"""The type-checking rule the code keeps: every `type: ignore` names its error code and says why.

mypy itself runs in `.ci/run`; this test keeps the escape hatch honest without running mypy."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("shared", "servers", "app")
_IGNORE = re.compile(r"type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)")


def ignore_problems(source: str) -> list[tuple[int, str]]:
    """(line, problem) for each `type: ignore` comment without an error code or without a reason after it."""
    problems = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT or not (match := _IGNORE.search(token.string)):
            continue
        if not match["codes"] or match["codes"] == "[]":
            problems.append((token.start[0], "no error code: write `# type: ignore[code]  # reason`"))
        elif not match["rest"].strip().lstrip("#").strip():
            problems.append((token.start[0], "no reason: add `  # why` after the ignore"))
    return problems


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("x = f()  # type: ignore\n", ["no error code"]),
        ("x = f()  # type:ignore  # a reason does not replace the code\n", ["no error code"]),
        ("x = f()  # type: ignore[]  # empty\n", ["no error code"]),
        ("x = f()  # type: ignore[attr-defined]\n", ["no reason"]),
        ("x = f()  # type: ignore[attr-defined]  # set by the plugin at import\n", []),
        ('x = "# type: ignore"\n', []),  # inside a string, not a comment
    ],
)
def test_ignore_problems_finds_bare_and_unexplained_ignores(line, expected):
    found = [problem for _, problem in ignore_problems(line)]
    assert [p.split(":")[0] for p in found] == expected


def test_every_type_ignore_has_a_code_and_a_reason():
    files = [p for top in CHECKED if (ROOT / top).is_dir() for p in sorted((ROOT / top).rglob("*.py"))]
    assert len(files) > 50, "the source folders were not found; is ROOT right?"
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {problem}"
        for path in files
        if ".venv" not in path.parts
        for line, problem in ignore_problems(path.read_text("utf-8"))
    ]
    assert bad == []
