"""Checkers: grade one task run's output. Every checker of a task must pass.

- exact: the text equals `value` (surrounding whitespace ignored; `ignore_case` optional).
- regex: `pattern` is found anywhere (re.search; `ignore_case` optional).
- contains: every string of `value` appears.
- json_schema: the target (default: the whole tool result; a JSON string is parsed) validates.
- python: `function(output)` returns a bool or (bool, reason), or an awaitable of one (`async def` is awaited);
  an exception is a failure with its message.
- judge: a named model grades the text against `criteria` (judge.py).

`on` picks what is checked: a dotted path into the tool result (`answer`, `hits.*.path`,
`citations.0.path`) or `result`; by default the role's answer text.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cadre_app.evals.suite import (
    ContainsCheck,
    ExactCheck,
    JsonSchemaCheck,
    JudgeCheck,
    PythonCheck,
    RegexCheck,
    Task,
)

if TYPE_CHECKING:
    from cadre_app.evals.judge import Judge

_MISSING = object()


@dataclass
class Output:
    """What one task run produced, as a checker sees it."""

    task: Task
    text: str
    """The role's answer text (oracle/librarian/search: `answer`; review: summary and findings)."""
    result: dict[str, Any] | None
    """The tool's structured result; None when the tool failed."""
    error: str | None = None
    """The tool's error message when it failed."""
    model: str = ""


@dataclass
class Verdict:
    passed: bool
    reason: str
    ungraded: bool = False
    """The answer could not be graded (the judge failed: rate limit, missing key, budget, bad output).
    Such a run is neither a pass nor a fail of the evaluated model."""


def target(output: Output, on: str | None, default_result: bool = False) -> Any:
    """The value a checker looks at; `_MISSING` when the path is not in the result."""
    if on is None:
        return output.result if default_result else output.text
    if on == "result":
        return output.result
    value: Any = output.result
    for part in on.split("."):
        if part == "*":  # a list: the parts after it apply to each item
            if not isinstance(value, list):
                return _MISSING
            continue
        value = _step(value, part)
        if value is _MISSING:
            return _MISSING
    return value


def _step(value: Any, part: str) -> Any:
    if isinstance(value, list) and value and all(isinstance(v, (dict, list)) for v in value) and not part.isdigit():
        found = [_step(v, part) for v in value]
        return [v for v in found if v is not _MISSING]
    if isinstance(value, dict):
        return value.get(part, _MISSING)
    if isinstance(value, list) and part.isdigit():
        return value[int(part)] if int(part) < len(value) else _MISSING
    return _MISSING


def as_text(value: Any) -> str:
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(as_text(v) for v in value)
    return json.dumps(value, sort_keys=True)


async def check(output: Output, judge: Judge | None = None) -> Verdict:
    """Run every checker of the task; the first failure's reason, or all reasons when it passes.

    A checker that could not grade (a failed judge) makes the run ungraded, unless another checker fails it."""
    if output.result is None:
        return Verdict(False, f"tool error: {output.error or 'no result'}")
    reasons, ungraded = [], None
    for spec in output.task.check:
        verdict = await run_checker(spec, output, judge)
        if verdict.ungraded:
            ungraded = ungraded or verdict
        elif not verdict.passed:
            return verdict
        else:
            reasons.append(verdict.reason)
    return ungraded or Verdict(True, "; ".join(reasons))


async def run_checker(spec: Any, output: Output, judge: Judge | None) -> Verdict:
    if isinstance(spec, JsonSchemaCheck):
        return _json_schema(spec, output)
    if isinstance(spec, PythonCheck):
        return await _python(spec, output)
    value = target(output, spec.on)
    if value is _MISSING:
        return Verdict(False, f"the result has no '{spec.on}'")
    text = as_text(value)
    where = f" in {spec.on}" if spec.on else ""
    if isinstance(spec, ExactCheck):
        got, want = text.strip(), spec.value.strip()
        same = got.lower() == want.lower() if spec.ignore_case else got == want
        return Verdict(same, f"exact match{where}" if same else f"expected exactly {want!r}{where}, got {_short(got)}")
    if isinstance(spec, RegexCheck):
        found = re.search(spec.pattern, text, re.IGNORECASE if spec.ignore_case else 0)
        if found:
            return Verdict(True, f"/{spec.pattern}/ matched {_short(found.group(0))}{where}")
        return Verdict(False, f"/{spec.pattern}/ not found{where}: {_short(text)}")
    if isinstance(spec, ContainsCheck):
        wanted = [spec.value] if isinstance(spec.value, str) else spec.value
        hay = text.lower() if spec.ignore_case else text
        missing = [w for w in wanted if (w.lower() if spec.ignore_case else w) not in hay]
        if missing:
            return Verdict(False, f"missing {', '.join(map(repr, missing))}{where}: {_short(text)}")
        return Verdict(True, f"contains {', '.join(map(repr, wanted))}{where}")
    if isinstance(spec, JudgeCheck):
        if judge is None:
            return Verdict(False, "no judge is available for this run", ungraded=True)
        return await judge.grade(spec, output, text)
    return Verdict(False, f"unknown checker {type(spec).__name__}")


def _json_schema(spec: JsonSchemaCheck, output: Output) -> Verdict:
    from jsonschema import Draft202012Validator

    value = target(output, spec.on, default_result=True)
    if value is _MISSING:
        return Verdict(False, f"the result has no '{spec.on}'")
    if isinstance(value, str):
        from cadre_core.models.base import parse_json_text

        parsed = parse_json_text(value)
        if parsed is None:
            return Verdict(False, f"not JSON: {_short(value)}")
        value = parsed
    errors = sorted(Draft202012Validator(spec.schema_).iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        at = "/".join(map(str, first.absolute_path)) or "(top)"
        return Verdict(False, f"JSON schema: at {at}: {first.message}")
    return Verdict(True, "matches the JSON schema")


async def _python(spec: PythonCheck, output: Output) -> Verdict:
    func = spec._callable
    if func is None:
        return Verdict(False, f"python checker {spec.function} was not loaded")
    try:
        got = func(output)
        if inspect.isawaitable(got):  # an `async def` checker: its result, not the coroutine, is the verdict
            got = await got
    except Exception as exc:
        return Verdict(False, f"{spec.function} raised {type(exc).__name__}: {exc}")
    if isinstance(got, Verdict):
        return got
    if isinstance(got, tuple) and len(got) == 2:
        return Verdict(bool(got[0]), str(got[1]))
    return Verdict(bool(got), f"{spec.function} returned {got!r}")


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
