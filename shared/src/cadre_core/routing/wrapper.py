"""The base of every routing wrapper, and the state the wrappers of one candidate share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cadre_core.errors import ModelError
from cadre_core.models.base import Model, ModelRequest, ModelResponse


class WrapperModel(Model):
    """A model around another model: passes everything through unless a subclass changes it."""

    def __init__(self, wrapped: Model):  # no super().__init__: one of these is built per attempt path
        self.wrapped, self.model_name, self.provider = wrapped, wrapped.model_name, wrapped.provider
        self.supports_tools, self.supports_output_schema = wrapped.supports_tools, wrapped.supports_output_schema

    async def request(self, request: ModelRequest) -> ModelResponse:
        return await self.wrapped.request(request)

    async def prepare(self) -> None:
        await self.wrapped.prepare()


def _never(_exc: ModelError) -> bool:
    return False


@dataclass
class Tries:
    """The attempts on one candidate within one routed request, shared by that candidate's wrappers.

    `Retrying` sets the number of the attempt under way and whether a failure of it will be retried;
    the budget and the recorder read them; `Repairing` names the phase shown in the heartbeat."""

    number: int = 1
    will_retry: Callable[[ModelError], bool] = field(default=_never)
    phase: str = "waiting for model"
