"""Eval suites: a TOML or JSONL file of tasks, validated on load.

A task has an `id`, a `prompt`, optional inline `files` (relative path -> text, written into a fresh
workspace), optional extra tool `args`, and `check`: one checker table or a list of them, all of which
must pass. Checker types: exact, regex, contains, json_schema, python, judge (see checkers.py).

TOML: optional top-level `name`, `role`, `description`, then `[[tasks]]`. JSONL: one task object a line.
Every problem raises `SuiteError` naming the file, the task and the field.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from cadre_core.errors import SuiteError

SUITES_DIR = Path(__file__).parent / "suites"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    on: str | None = None
    """Which part of the tool's result to check: a dotted path such as `answer`, `hits.*.path`,
    `citations.0.path`, or `result` for the whole result. Default: the role's answer text
    (the whole result for json_schema)."""


class ExactCheck(_Spec):
    type: Literal["exact"]
    value: str
    ignore_case: bool = False


class RegexCheck(_Spec):
    type: Literal["regex"]
    pattern: str
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value


class ContainsCheck(_Spec):
    type: Literal["contains"]
    value: str | list[str]
    """Every string must appear."""
    ignore_case: bool = False

    @field_validator("value")
    @classmethod
    def _not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value or (isinstance(value, list) and not all(value)):
            raise ValueError("give a non-empty string or a list of non-empty strings")
        return value


class JsonSchemaCheck(_Spec):
    type: Literal["json_schema", "json-schema"]
    schema_: dict[str, Any] = Field(alias="schema")

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator, SchemaError

        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON schema ({exc.message})") from None
        return value


class PythonCheck(_Spec):
    type: Literal["python"]
    function: str
    """`package.module:function` (importable) or `file.py:function` (relative to the suite file).
    It is called with an `Output` and returns a bool or (bool, reason)."""
    _callable: Callable[..., Any] | None = PrivateAttr(default=None)

    @field_validator("function")
    @classmethod
    def _shape(cls, value: str) -> str:
        target, _, name = value.rpartition(":")
        if not target or not name.isidentifier():
            raise ValueError("write 'package.module:function' or 'checks.py:function'")
        return value


class JudgeCheck(_Spec):
    type: Literal["judge"]
    model: str
    """The judge, `provider:model`, called through the router (keys, ledger and budgets apply)."""
    criteria: str = Field(min_length=1)
    reference: str | None = None

    @field_validator("model")
    @classmethod
    def _model_ref(cls, value: str) -> str:
        from cadre_core.models.refs import parse_model_ref

        parse_model_ref(value)
        return value


Check = Annotated[
    ExactCheck | RegexCheck | ContainsCheck | JsonSchemaCheck | PythonCheck | JudgeCheck,
    Field(discriminator="type"),
]


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    prompt: str = Field(min_length=1)
    files: dict[str, str] = Field(default_factory=dict)
    args: dict[str, Any] = Field(default_factory=dict)
    """Extra tool arguments, e.g. `{ mode = "debug" }` for the oracle or `{ limit = 5 }` for search."""
    check: list[Check] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_check_is_a_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("check"), dict):
            data = {**data, "check": [data["check"]]}
        return data

    @field_validator("files")
    @classmethod
    def _relative_paths(cls, files: dict[str, str]) -> dict[str, str]:
        for name in files:
            path = PurePosixPath(name)
            if not name or path.is_absolute() or ".." in path.parts or "\\" in name or ":" in name:
                raise ValueError(f"'{name}' must be a relative path inside the workspace, without '..'")
        return files


@dataclass
class Suite:
    """A loaded suite: where it came from and its tasks."""

    path: Path
    tasks: list[Task]
    name: str = ""
    role: str | None = None
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


_TOP_KEYS = {"name", "role", "description", "tasks"}
_TAGS = {"exact", "regex", "contains", "json_schema", "json-schema", "python", "judge"}


def load_suite(path: Path | str) -> Suite:
    """Read and validate a suite; Python checkers are imported now so a typo fails before any spend."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"suite {path} does not exist; pass a .toml or .jsonl file")
    if path.suffix == ".toml":
        entries, meta = _read_toml(path)
    elif path.suffix in (".jsonl", ".ndjson"):
        entries, meta = _read_jsonl(path), {}
    else:
        raise SuiteError(f"suite {path}: use a .toml or .jsonl file (got '{path.suffix or 'no extension'}')")
    if not entries:
        raise SuiteError(f"suite {path} has no tasks; add [[tasks]] (TOML) or one JSON object a line (JSONL)")
    tasks, seen = [], set()
    for number, (where, raw) in enumerate(entries, start=1):
        if not isinstance(raw, dict):
            raise SuiteError(f"suite {path}, task #{number}{where}: a task must be a table/object")
        raw = {"id": f"task-{number}", **raw}
        label = f"task '{raw['id']}' (#{number}{where})"
        try:
            task = Task.model_validate(raw)
        except ValidationError as exc:
            raise SuiteError(f"suite {path}, {label}: {_describe(exc)}") from None
        if task.id in seen:
            raise SuiteError(f"suite {path}, {label}: the id '{task.id}' is used twice; give each task its own id")
        seen.add(task.id)
        for index, spec in enumerate(task.check):
            if isinstance(spec, PythonCheck):
                try:
                    spec._callable = resolve_function(spec.function, path.parent)
                except SuiteError as exc:
                    raise SuiteError(f"suite {path}, {label}: field 'check.{index}.function': {exc}") from None
        tasks.append(task)
    role = meta.get("role")
    return Suite(path, tasks, name=str(meta.get("name") or path.stem), role=role,
                 description=str(meta.get("description") or ""), meta=meta)  # fmt: skip


def builtin_suite(role: str) -> Path | None:
    """The starter suite shipped for a role, if any."""
    for ext in ("toml", "jsonl"):
        if (found := SUITES_DIR / f"{role}.{ext}").is_file():
            return found
    return None


def _read_toml(path: Path) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"suite {path} is not valid TOML ({exc}); fix the syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"suite {path} cannot be read ({exc})") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SuiteError(f"suite {path}: unknown top-level key(s) {', '.join(unknown)}; "
                         f"use {', '.join(sorted(_TOP_KEYS))}")  # fmt: skip
    tasks = data.get("tasks", [])
    if not isinstance(tasks, list):
        raise SuiteError(f"suite {path}: 'tasks' must be an array of tables ([[tasks]])")
    if "role" in data and not isinstance(data["role"], str):
        raise SuiteError(f"suite {path}: 'role' must be a string such as \"oracle\"")
    return [("", t) for t in tasks], {k: v for k, v in data.items() if k != "tasks"}


def _read_jsonl(path: Path) -> list[tuple[str, Any]]:
    entries = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"suite {path} cannot be read ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            entries.append((f", line {number}", json.loads(line)))
        except ValueError as exc:
            raise SuiteError(f"suite {path}, line {number}: not valid JSON ({exc}); one task object per line") from None
    return entries


def _describe(exc: ValidationError) -> str:
    """The first problem as "field 'a.b': message", plus how many more there are."""
    err = exc.errors()[0]
    parts = list(err["loc"])  # drop the checker tag pydantic adds after the index: check.0.regex.pattern
    loc = ".".join(str(p) for i, p in enumerate(parts) if not (i and isinstance(parts[i - 1], int) and p in _TAGS))
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field; remove it or check its spelling"
    elif err["type"] == "union_tag_invalid":
        message = "unknown checker type; use exact, regex, contains, json_schema, python or judge"
    elif err["type"] == "union_tag_not_found":
        message = "a checker needs a 'type': exact, regex, contains, json_schema, python or judge"
    elif err["type"] == "missing":
        message = "required; add it"
    more = f" ({len(exc.errors()) - 1} more problem(s) after this one)" if len(exc.errors()) > 1 else ""
    return f"field '{loc or 'task'}': {message}{more}"


def resolve_function(spec: str, base: Path) -> Callable[..., Any]:
    """The function named by `module:function` or `file.py:function` (relative to `base`)."""
    target, _, name = spec.rpartition(":")
    if target.endswith(".py"):
        file = (base / target).resolve()
        if not file.is_file():
            raise SuiteError(f"{file} does not exist; the path is relative to the suite file")
        module_name = f"cadre_eval_checks_{abs(hash(str(file)))}"
        module = sys.modules.get(module_name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(module_name, file)
            if loader_spec is None or loader_spec.loader is None:
                raise SuiteError(f"{file} cannot be imported as Python")
            module = importlib.util.module_from_spec(loader_spec)
            try:
                loader_spec.loader.exec_module(module)
            except Exception as exc:
                raise SuiteError(f"importing {file} failed ({type(exc).__name__}: {exc})") from None
            sys.modules[module_name] = module
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise SuiteError(f"module '{target}' cannot be imported ({type(exc).__name__}: {exc})") from None
    func: object = getattr(module, name, None)
    if not callable(func):
        raise SuiteError(f"'{target}' has no function '{name}'")
    return func
