"""Checks on an answer: the request's validator and the off-the-rails detectors.

`CheckedModel` raises `OffRailsError` (carrying the paid-for answer) when one fails; what happens then is
decided further out: `Repairing` asks once more for an invalid answer, `OffRailsPolicy` keeps a flagged
answer with a warning or sets it aside for the next candidate."""

from __future__ import annotations

from cadre_core.detectors import first_problem, tool_problem
from cadre_core.errors import CadreError, OutputInvalidError
from cadre_core.models.base import ModelRequest, ModelResponse
from cadre_core.routing.wrapper import WrapperModel

INVALID_OUTPUT = "invalid_structured_output"
"""The detector name recorded for an answer the request's validator rejected."""


class OffRailsError(CadreError):
    """An answer a check flagged: the answer itself, the check's name and why.

    `usable` is False for an answer that failed the validator (it cannot be returned as is)."""

    def __init__(self, response: ModelResponse, detector: str, reason: str, *, usable: bool):
        self.response, self.detector, self.reason, self.usable = response, detector, reason, usable
        label = "invalid structured output" if detector == INVALID_OUTPUT else detector
        super().__init__(f"{label}: {reason}")


class CheckedModel(WrapperModel):
    """Raises `OffRailsError` for a final answer that fails the request's validator, or that a detector
    flags (checked only once the answer is valid)."""

    async def request(self, request: ModelRequest) -> ModelResponse:
        response = await self.wrapped.request(request)
        if problem := invalid(request, response):
            raise OffRailsError(response, INVALID_OUTPUT, problem, usable=False)
        if flagged := first_problem(response) or tool_problem(request, response):
            raise OffRailsError(response, *flagged, usable=True)
        return response


def invalid(request: ModelRequest, response: ModelResponse) -> str | None:
    """Why a final answer fails the request's validator, or None."""
    if request.validate is None or response.tool_calls:
        return None
    try:
        request.validate(response)
    except OutputInvalidError as exc:
        return str(exc)
    return None
