"""Tool argument types with schema bounds, and one-line messages for arguments that fail them.

Every string argument of every tool has a `maxLength` (and every list a `maxItems`), so a host sees
the limits in `tools/list` and a megabyte never reaches a tool body."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from cadre_core.errors import clip

Name = Annotated[str, Field(max_length=200)]
"""A name, id, ref, version or kind."""
PathText = Annotated[str, Field(max_length=4096)]
"""A path or glob (Linux PATH_MAX)."""
Paths = Annotated[list[PathText], Field(max_length=100)]
Names = Annotated[list[Name], Field(max_length=20)]
Question = Annotated[str, Field(max_length=20_000)]
"""A question, query or snippet: pasted errors and bug reports fit."""
LongText = Annotated[str, Field(max_length=1_000_000)]
"""A diff or extra context: large, but never unbounded."""
Line = Annotated[int, Field(ge=1, le=10_000_000)]

_MAX_REPORTED = 3


def validation_message(error: Any, schema: dict[str, Any]) -> str:
    """One line for a pydantic `ValidationError` of a tool's arguments, against the tool's input schema:
    `argument 'limit': expected an integer ≥ 1, got "ten"` (at most three arguments, no URLs)."""
    parts: list[str] = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        name = _place(loc)
        if item["type"] == "missing":
            part = f"argument '{name}' is required"
        else:
            part = f"argument '{name}': expected {_expected(_schema_at(schema, loc))}, got {_shown(item['input'])}"
        if part not in parts:
            parts.append(part)
    more = len(parts) - _MAX_REPORTED
    return "; ".join(parts[:_MAX_REPORTED]) + (f" (and {more} more)" if more > 0 else "")


def _place(loc: list[Any]) -> str:
    name = str(loc[0]) if loc else "arguments"
    return clip(name + "".join(f"[{p}]" for p in loc[1:] if isinstance(p, int)), 80)


def _schema_at(schema: dict[str, Any], loc: list[Any]) -> dict[str, Any]:
    """The schema of the value at `loc` (an argument name, then list indexes)."""
    node = schema.get("properties", {}).get(loc[0], {}) if loc else schema
    for part in loc[1:]:
        if not isinstance(part, int):
            continue
        arrays = [s for s in node.get("anyOf", [node]) if s.get("type") == "array"]
        node = arrays[0].get("items", {}) if arrays else {}
    return node


def _expected(schema: dict[str, Any]) -> str:
    """What a schema accepts, in words."""
    if "anyOf" in schema:
        options = [_expected(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(options) or "null"
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        most = schema.get("maxLength")
        return "a string" + (f" of at most {most:,} characters" if most is not None else "")
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a number"
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{noun} from {low:,} to {high:,}"
        return noun + (f" ≥ {low:,}" if low is not None else "") + (f" ≤ {high:,}" if high is not None else "")
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        most = schema.get("maxItems")
        items = _expected(schema.get("items", {}))
        return f"a list of at most {most:,} items, each {items}" if most is not None else f"a list, each item {items}"
    if kind == "object":
        return "an object"
    return "a valid value"


def _shown(value: Any) -> str:
    """The rejected value, short: JSON text cut to a few dozen characters, or a list's length."""
    if isinstance(value, list | tuple) and len(value) > 10:
        return f"a list of {len(value):,} items"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return clip(text)
