"""Structured answers: closed JSON schemas every vendor accepts, and validators for the router."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from cadre_core.errors import OutputInvalidError
from cadre_core.models.base import ModelResponse


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the closed form every vendor's structured output accepts."""
    schema = model.model_json_schema()

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for key in ("title", "default"):
                node.pop(key, None)
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def validator(model: type[BaseModel], *, host_prose: Callable[[str], dict[str, Any]] | None = None):
    """A `ModelRequest.validate` that accepts only output matching `model`.

    `host_prose` turns the host model's invalid reply into a valid output: the host cannot be
    asked twice on every MCP protocol, so its prose is kept rather than repaired."""

    def check(response: ModelResponse) -> None:
        if host_prose and response.model.startswith("sampling:") and not is_valid(model, response.output):
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
