"""The detectors' policy: what happens to an answer a detector flagged."""

from __future__ import annotations

from cadre_core.models.base import Model, ModelRequest, ModelResponse
from cadre_core.routing.checks import OffRailsError
from cadre_core.routing.wrapper import WrapperModel


class OffRailsPolicy(WrapperModel):
    """A flagged answer gets a warning naming the detector; it is returned (the role's `off_rails = "warn"`,
    or the last candidate), or re-raised as `OffRailsError` so the fallback sets it aside and tries the
    next candidate (`off_rails = "fallback"`). Answers that failed the validator pass through untouched."""

    def __init__(self, wrapped: Model, *, ref: str, fall_back: bool):
        super().__init__(wrapped)
        self.ref, self.fall_back = ref, fall_back

    async def request(self, request: ModelRequest) -> ModelResponse:
        try:
            return await self.wrapped.request(request)
        except OffRailsError as flagged:
            if not flagged.usable:
                raise
            flagged.response.warnings.append(f"{self.ref} answer flagged by {flagged.detector}: {flagged.reason}")
            if self.fall_back:
                raise
            return flagged.response
