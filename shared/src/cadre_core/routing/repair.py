"""Validation with one repair turn."""

from __future__ import annotations

import dataclasses

from cadre_core.budget import BudgetExceededError
from cadre_core.errors import ModelError
from cadre_core.models.base import Message, Model, ModelRequest, ModelResponse
from cadre_core.routing.checks import INVALID_OUTPUT, OffRailsError
from cadre_core.routing.wrapper import Tries, WrapperModel


class Repairing(WrapperModel):
    """An answer that fails the request's validator gets one repair turn on the same wrapped model (so it is
    retried, budgeted and recorded like any attempt): the request again, with the bad answer and what is
    wrong with it. A second invalid answer, or a repair the budget refuses, raises the `OffRailsError`."""

    def __init__(self, wrapped: Model, tries: Tries):
        super().__init__(wrapped)
        self.tries = tries

    async def request(self, request: ModelRequest) -> ModelResponse:
        try:
            return await self.wrapped.request(request)
        except OffRailsError as bad:
            if bad.detector != INVALID_OUTPUT:
                raise
            first = bad
        self.tries.phase = "repairing the answer"
        try:
            return await self.wrapped.request(repair_request(request, first.response, first.reason))
        except BudgetExceededError:
            raise first from None
        except ModelError as exc:
            if exc.retryable or exc.fallback:  # the candidate is given up: say why, with the first cause
                exc.detail = f"the repair turn failed: {exc.detail} (the first answer was invalid: {first.reason})"
            raise


def repair_request(request: ModelRequest, bad: ModelResponse, problem: str) -> ModelRequest:
    """The request again, with the invalid answer and what was wrong with it."""
    return dataclasses.replace(
        request,
        messages=[
            *request.messages,
            Message.assistant(bad.text),
            Message.user(f"That answer is invalid: {problem}. Reply again with only the corrected answer."),
        ],
    )
