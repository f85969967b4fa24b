"""Used by build_queries.py: record exceptions raised inside the library under test.

As a pytest plugin (`-p _capture_plugin`), while the fix commit's new tests run against the
parent tree: when a test errors with an exception whose innermost frame is library code under
$CADRE_CAPTURE_ROOT (not a test file), or click's CliRunner swallows such an exception, the
frames (root-relative path, line, function, source line) are appended as JSON to
$CADRE_CAPTURE_OUT. Plain assertion failures in the test itself are not recorded.

As a script (`python _capture_plugin.py black-case FILE`), for black's data-driven tests: the
input part of a test case file the commit added is formatted with the parent's black (with
the safety checks on), and a crash is recorded the same way.
"""

from __future__ import annotations

import inspect
import json
import linecache
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(os.environ.get("CADRE_CAPTURE_ROOT", ".")).resolve()
_OUT = os.environ.get("CADRE_CAPTURE_OUT")
_current: dict[str, Any] = {}


def _is_test(rel: str) -> bool:
    parts = rel.split("/")
    name = parts[-1]
    return (
        any(p in ("tests", "test") for p in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def _frames(tb: Any) -> list[dict[str, Any]]:
    out = []
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        try:
            rel = Path(filename).resolve().relative_to(_ROOT).as_posix()
        except (ValueError, OSError):
            continue
        if rel.endswith("click/testing.py"):
            continue  # the test runner's own plumbing; a user would not see it
        text = linecache.getline(filename, lineno).strip()
        out.append({"path": rel, "line": lineno, "func": frame.f_code.co_name, "text": text})
    return out


def _record(exc: BaseException, tb: Any, via: str) -> None:
    if _OUT is None or _current.get("done"):
        return
    frames = _frames(tb)
    if not frames or _is_test(frames[-1]["path"]):
        return  # raised by the test itself, or outside the tree
    kind = type(exc)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    record = {
        "test": _current.get("test"),
        "test_path": _current.get("test_path"),
        "via": via,
        "type": name,
        "message": str(exc),
        "frames": frames,
    }
    with open(_OUT, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    _current["done"] = True


def _patch_click_runner() -> None:
    try:
        from click import testing
    except Exception:
        return
    original = testing.CliRunner.invoke

    def invoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        exc_info = getattr(result, "exc_info", None)
        if exc_info and exc_info[1] is not None and not isinstance(exc_info[1], SystemExit):
            _record(exc_info[1], exc_info[2], "clirunner")
        return result

    testing.CliRunner.invoke = invoke


def pytest_configure(config: pytest.Config) -> None:
    _patch_click_runner()


def pytest_runtest_setup(item: pytest.Item) -> None:
    _current.clear()
    _current["test"] = getattr(item, "originalname", None) or item.name
    _current["test_path"] = Path(str(item.path)).resolve().relative_to(_ROOT).as_posix()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    if call.when == "call" and call.excinfo is not None:
        _record(call.excinfo.value, call.excinfo.tb, "test")


def _black_mode(black: Any, flags: str) -> Any:
    mode_cls = getattr(black, "Mode", None) or black.FileMode
    kwargs: dict[str, Any] = {}
    if "--preview" in flags:
        kwargs["preview"] = True
    if "--pyi" in flags:
        kwargs["is_pyi"] = True
    if "--skip-string-normalization" in flags:
        kwargs["string_normalization"] = False
    if "--skip-magic-trailing-comma" in flags:
        kwargs["magic_trailing_comma"] = False
    if m := re.search(r"--line-length[= ](\d+)", flags):
        kwargs["line_length"] = int(m.group(1))
    if m := re.search(r"--(?:minimum|target)-version[= ]py3?\.?(\d+)", flags):
        minor = int(m.group(1))
        versions = getattr(black, "TargetVersion", None)
        if versions is not None:
            kwargs["target_versions"] = {v for v in versions if v.name.startswith("PY3") and int(v.name[3:]) >= minor}
    try:
        return mode_cls(**kwargs)
    except TypeError:
        return mode_cls()


def black_case(path: str) -> int:
    """Format the input part of a black test case with the tree's black; record a crash."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    cut = next((i for i, ln in enumerate(lines) if ln.rstrip() == "# output"), len(lines))
    source = "".join(lines[:cut])
    flags = "".join(ln for ln in lines[:3] if ln.startswith("# flags:"))
    _current["test"] = "<black-case>"
    _current["test_path"] = path
    import black

    kwargs: dict[str, Any] = {"fast": False, "mode": _black_mode(black, flags)}
    if "line_length" in inspect.signature(black.format_file_contents).parameters:
        kwargs["line_length"] = 88  # black 18.x
        if not hasattr(black, "Mode") and "pyi" not in flags:
            kwargs.pop("mode")
    try:
        black.format_file_contents(source, **kwargs)
    except Exception as exc:
        if type(exc).__name__ != "NothingChanged":
            _record(exc, exc.__traceback__, "black-case")
    return 0


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "black-case":
    raise SystemExit(black_case(sys.argv[2]))
