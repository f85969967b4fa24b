"""Structured answers: closed JSON schemas every vendor accepts, and validators for the router."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from cadre_core.errors import OutputInvalidError
from cadre_core.models.base import ModelResponse
from cadre_core.models.refs import is_host

ANNOTATIONS = frozenset({"title", "default", "examples", "$schema"})
"""Dropped: OpenAI's strict mode refuses `default` ("'default' is not permitted"); the rest carry nothing a
model needs that `description` does not."""
CONSTRAINTS = (
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
"""Moved into `description`, as Anthropic's own SDK does (`anthropic.lib._parse._transform`): Anthropic's
structured outputs refuse them ("For 'integer' type, property 'minimum' is not supported"), and Gemini's
`responseJsonSchema` lists only some. The validator still enforces every one of them."""
SUBSCHEMA_MAPS = ("properties", "$defs")
SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the closed form every vendor's structured output accepts: each object
    closed with every property required, annotations dropped, value constraints told in `description`.
    Keywords are dropped; a property is never dropped, whatever its name."""
    closed: dict[str, Any] = close_schema(model.model_json_schema())
    return closed


def close_schema(node: Any) -> Any:
    """`node` (a JSON schema) closed as `strict_schema` describes; returns a new dict."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    told: list[str] = []
    for key, value in node.items():
        if key in ANNOTATIONS:
            continue
        if key in CONSTRAINTS:
            told.append(f"{key}: {json.dumps(value)}")
        elif key in SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: close_schema(sub) for name, sub in value.items()}
        elif key in SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [close_schema(sub) for sub in value]
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = close_schema(value)
        else:
            out[key] = value
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    if told:
        described = out.get("description")
        out["description"] = f"{described} ({', '.join(told)})" if described else f"({', '.join(told)})"
    return out


def schema_instruction(schema: dict[str, Any]) -> str:
    """What a prompt says when the endpoint cannot be given the schema itself."""
    return "Answer with only a JSON object matching this JSON schema, no prose:\n" + json.dumps(schema)


def validator(
    model: type[BaseModel], *, host_prose: Callable[[str], dict[str, Any]] | None = None
) -> Callable[[ModelResponse], None]:
    """A `ModelRequest.validate` that accepts only output matching `model`.

    `host_prose` turns the host model's invalid reply into a valid output: the host cannot be
    asked twice on every MCP protocol, so its prose is kept rather than repaired."""

    def check(response: ModelResponse) -> None:
        if host_prose and is_host(response.model) and not is_valid(model, response.output):
            response.output = host_prose(response.text.strip() or "(empty answer)")
        if response.output is None:
            raise OutputInvalidError("the reply is not a JSON object; answer with JSON matching the schema")
        try:
            model.model_validate(response.output)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:5])
            raise OutputInvalidError(f"the JSON does not match the schema ({problems})") from None

    return check


def is_valid(model: type[BaseModel], output: Any) -> bool:
    try:
        model.model_validate(output)
    except ValidationError:
        return False
    return True
