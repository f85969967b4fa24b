"""Fallback over a role's candidates: the first that answers wins."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from cadre_core.breaker import Breaker
from cadre_core.budget import BudgetExceededError
from cadre_core.errors import AllCandidatesFailedError, Attempt, ModelError
from cadre_core.models.base import Model, ModelRequest, ModelResponse
from cadre_core.models.refs import is_host
from cadre_core.routing.checks import OffRailsError

log = structlog.get_logger("cadre.router")
_call_ids = itertools.count(1)
"""Each routed request's id for the breakers (which call holds a half-open probe, which calls failed)."""


@dataclass
class Ready:
    """A candidate that can take the request: the request sized for it, and how to build its model
    for one routed request (`call_id`) knowing whether it is the `last` one tried."""

    request: ModelRequest
    model: Callable[[int, bool], Model]


class Choice(Protocol):
    """One candidate as the fallback sees it."""

    ref: str
    """provider:model"""
    breaker: Breaker

    async def ready(self, request: ModelRequest) -> Ready | Attempt:
        """Ready to take `request`, or why not (no key, window too small, a capability missing)."""
        ...


class FallbackModel(Model):
    """Tries each choice in order until one answers, behind the plain `Model` interface.

    A choice is skipped when it is not ready or its breaker is open. A failure that another model may
    not have (transient, unknown model, time-out) moves on; one that no model can fix (auth, a bad
    request, the budget) is raised. A flagged answer set aside (`OffRailsError`, usable) is returned,
    with a warning, if no later choice answers. Never fail untried: when every choice was skipped for
    an open breaker, the one that recovers first is tried. Otherwise `AllCandidatesFailedError` lists
    every attempt and why."""

    provider = "route"

    def __init__(self, role: str, choices: list[Choice], *, clock: Callable[[], float] = time.monotonic):
        super().__init__(role)
        self.role, self.choices, self.clock = role, choices, clock

    async def request(self, request: ModelRequest) -> ModelResponse:
        call_id = next(_call_ids)
        attempts: list[Attempt] = []
        flagged: list[ModelResponse] = []
        circuit_open: list[tuple[Choice, Ready]] = []
        for index, choice in enumerate(self.choices):
            ready = await choice.ready(request)
            if isinstance(ready, Attempt):
                attempts.append(ready)
                continue
            if why := choice.breaker.admit(call_id, self.clock()):
                attempts.append(Attempt(choice.ref, "skipped", why))
                circuit_open.append((choice, ready))
                continue
            last = index == len(self.choices) - 1
            if answer := await self._try(choice, ready, call_id, last, attempts, flagged):
                return answer
        if not flagged and circuit_open:
            now = self.clock()
            choice, ready = min(circuit_open, key=lambda c: c[0].breaker.retry_in(now))
            log.info("all open candidates skipped; trying the one that recovers first", model=choice.ref)
            if answer := await self._try(choice, ready, call_id, True, attempts, flagged):
                return answer
        if flagged:  # paid for and usable: better than failing the call
            flagged[0].warnings.append("no later candidate answered, so the flagged answer is kept")
            return flagged[0]
        raise AllCandidatesFailedError(self.role, attempts, self._key_hint(attempts))

    async def _try(
        self,
        choice: Choice,
        ready: Ready,
        call_id: int,
        last: bool,
        attempts: list[Attempt],
        flagged: list[ModelResponse],
    ) -> ModelResponse | None:
        """The choice's answer; None, with why in `attempts`, to go on to the next choice."""
        started = time.perf_counter()
        try:
            return await ready.model(call_id, last).request(ready.request)
        except OffRailsError as exc:
            attempts.append(Attempt(choice.ref, "off_rails", str(exc)))
            if exc.usable and not flagged:
                flagged.append(exc.response)
            return None
        except ModelError as exc:
            if exc.retryable or exc.fallback:  # another model may not have this problem
                latency = (time.perf_counter() - started) * 1000
                attempts.append(Attempt(choice.ref, "failed", exc.detail, type(exc).__name__, latency))
                log.warning("candidate failed", role=self.role, model=choice.ref, error=str(exc))
                return None
            return self._keep_flagged(flagged, exc)
        except BudgetExceededError as exc:
            return self._keep_flagged(flagged, exc)
        finally:
            choice.breaker.release(call_id)

    @staticmethod
    def _keep_flagged(flagged: list[ModelResponse], exc: BudgetExceededError | ModelError) -> ModelResponse:
        """The answer set aside, with a warning, instead of an error no model can fix; else the error."""
        if not flagged:
            raise exc
        flagged[0].warnings.append(f"the next candidate failed ({exc}), so the flagged answer is kept")
        return flagged[0]

    def _key_hint(self, attempts: list[Attempt]) -> str:
        keyed = [a for a in attempts if not is_host(a.model)]
        if keyed and all(a.outcome == "no_key" for a in keyed):
            keys = sorted({a.env_var for a in keyed if a.env_var})
            return f"No provider for role '{self.role}' has a key. Set one of: {', '.join(keys)}."
        return ""
