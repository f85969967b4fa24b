"""The oracle's answer shapes: JSON schemas sent to the model and validators for what comes back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cadre_core.errors import OutputInvalidError
from cadre_core.models.base import ModelResponse

Confidence = Literal["low", "medium", "high"]
Severity = Literal["blocker", "major", "minor", "nit"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Citation(_Closed):
    path: str
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)


class OracleAnswer(_Closed):
    answer: str = Field(min_length=1, description="Markdown answer to the question")
    key_points: list[str]
    risks: list[str]
    next_steps: list[str]
    confidence: Confidence
    citations: list[Citation]


class Finding(_Closed):
    severity: Severity
    path: str
    line: int = Field(ge=0)
    title: str
    explanation: str
    suggestion: str


class Review(_Closed):
    summary: str = Field(min_length=1)
    findings: list[Finding]


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


def validator(model: type[BaseModel]):
    """A `ModelRequest.validate` that accepts only output matching `model`."""

    def check(response: ModelResponse) -> None:
        if response.model.startswith("sampling:") and model is OracleAnswer and _not_valid(model, response.output):
            # the host's model cannot be asked twice on every protocol: keep its prose as the answer
            response.output = {"answer": response.text.strip() or "(empty answer)", "key_points": [], "risks": [],
                               "next_steps": [], "confidence": "low", "citations": []}  # fmt: skip
        if response.output is None:
            raise OutputInvalidError("the reply is not a JSON object; answer with JSON matching the schema")
        try:
            model.model_validate(response.output)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:5])
            raise OutputInvalidError(f"the JSON does not match the schema ({problems})") from None

    return check


def _not_valid(model: type[BaseModel], output: Any) -> bool:
    try:
        model.model_validate(output)
    except ValidationError:
        return True
    return False
