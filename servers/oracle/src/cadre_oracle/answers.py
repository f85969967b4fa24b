"""The oracle's answer shapes: JSON schemas sent to the model and validators for what comes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cadre_core.models.base import ModelResponse
from cadre_core.structured import strict_schema, validator

__all__ = ["Citation", "Finding", "OracleAnswer", "Review", "oracle_validator", "strict_schema", "validator"]

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


def oracle_validator() -> Callable[[ModelResponse], None]:
    """Validates an OracleAnswer; the host model's prose is kept as a low-confidence answer."""
    return validator(
        OracleAnswer,
        host_prose=lambda text: {
            "answer": text,
            "key_points": [],
            "risks": [],
            "next_steps": [],
            "confidence": "low",
            "citations": [],
        },
    )
