"""Retry with the circuit breaker and the time-out.

`TimeLimit` bounds one attempt; `Retrying` retries transient failures with jittered backoff and feeds
the candidate's breaker (breaker.py) through its public methods. SDK warm-up (`Model.prepare`) happens
before either, in the fallback's readiness check, so a time-out measures only the call."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import structlog

from cadre_core.breaker import Breaker
from cadre_core.call import CallInfo
from cadre_core.config import RouterConfig
from cadre_core.errors import ModelError, ModelNotFoundError, ModelTimeoutError
from cadre_core.models.base import Model, ModelRequest, ModelResponse
from cadre_core.routing.checks import OffRailsError
from cadre_core.routing.wrapper import Tries, WrapperModel

log = structlog.get_logger("cadre.router")

LONG_TIMEOUT_S = 120.0
"""A candidate that stayed silent this long is not retried; the next candidate is tried instead."""


class TimeLimit(WrapperModel):
    """No answer within `timeout_s` raises `ModelTimeoutError` (not retryable from `LONG_TIMEOUT_S` on).
    A reply that came back after the limit (the loop was late to cancel) is discarded, kept on the
    error's `late_response` so its cost is still counted."""

    def __init__(self, wrapped: Model, timeout_s: float, *, ref: str):
        super().__init__(wrapped)
        self.timeout_s, self.ref = timeout_s, ref

    async def request(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            with anyio.fail_after(self.timeout_s):
                response = await self.wrapped.request(request)
        except TimeoutError:
            raise self._timed_out(None) from None
        if time.perf_counter() - started > self.timeout_s:
            raise self._timed_out(response)
        return response

    def _timed_out(self, late: ModelResponse | None) -> ModelTimeoutError:
        provider, _, name = self.ref.partition(":")
        exc = ModelTimeoutError(f"no answer within {self.timeout_s:g} s", provider=provider, model=name)
        exc.late_response = late
        if self.timeout_s >= LONG_TIMEOUT_S:  # waiting that long again on the same model rarely pays: fall back
            exc.retryable = False
        return exc


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a transient failure is retried, and how long to wait first."""

    retries: int = 2
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 60.0

    @classmethod
    def from_config(cls, cfg: RouterConfig) -> RetryPolicy:
        return cls(cfg.retries_per_candidate, cfg.backoff_initial_s, cfg.backoff_max_s, cfg.max_retry_after_s)

    def will_retry(self, exc: ModelError, retry: int) -> bool:
        """Whether failure number `retry` (1 for the first) of a request is retried on the same model."""
        too_long = exc.retry_after is not None and exc.retry_after > self.max_retry_after_s
        return exc.retryable and retry <= self.retries and not too_long

    def backoff(self, retry: int, retry_after: float | None) -> float:
        """Jittered exponential backoff that honours retry-after."""
        base = min(self.backoff_max_s, self.backoff_initial_s * (2 ** (retry - 1)))
        delay = random.uniform(base / 2, base)  # noqa: S311 - jitter, not crypto
        return max(delay, retry_after) if retry_after is not None else delay


class Retrying(WrapperModel):
    """Sends a request, retrying transient errors with backoff, and feeds the breaker: an answer (even a
    flagged one) closes it, a transient failure or time-out counts against it, an unknown model trips it.
    Errors that retrying cannot fix, and those it gave up on, propagate; so do budget refusals,
    cancellations and bugs. Numbers each attempt in `tries` and shows it in `status` (the heartbeat)."""

    def __init__(
        self,
        wrapped: Model,
        *,
        ref: str,
        policy: RetryPolicy,
        breaker: Breaker,
        call_id: int,
        tries: Tries,
        status: CallInfo,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
        on_cancelled_wait: Callable[[int], None] = lambda _number: None,
    ):
        super().__init__(wrapped)
        self.ref, self.policy, self.breaker, self.call_id = ref, policy, breaker, call_id
        self.tries, self.status, self.clock, self.sleep = tries, status, clock, sleep
        self.on_cancelled_wait = on_cancelled_wait
        """Told the number of an attempt cancelled while waiting to start (the ledger records it)."""

    async def request(self, request: ModelRequest) -> ModelResponse:
        retry = 1
        while True:
            number = self.tries.number
            self.tries.will_retry = functools.partial(self.policy.will_retry, retry=retry)
            self.status.model, self.status.phase = self.ref, self.tries.phase
            try:
                response = await self.wrapped.request(request)
            except OffRailsError:
                self.tries.number += 1
                self.breaker.record(self.call_id, False, self.clock())
                raise
            except ModelError as exc:
                self.tries.number += 1
                self._count_failure(exc)
                if not self.policy.will_retry(exc, retry):
                    raise
                await self._wait(retry, exc, number)
                retry += 1
                continue
            self.tries.number += 1
            self.breaker.record(self.call_id, False, self.clock())
            return response

    def _count_failure(self, exc: ModelError) -> None:
        short = exc.detail if len(exc.detail) <= 100 else exc.detail[:99] + "…"
        if exc.retryable or isinstance(exc, ModelTimeoutError):
            self.breaker.record(self.call_id, True, self.clock(), short)
        elif isinstance(exc, ModelNotFoundError):
            self.breaker.trip(self.clock(), short)

    async def _wait(self, retry: int, exc: ModelError, number: int) -> None:
        delay = self.policy.backoff(retry, exc.retry_after)
        log.info("retrying", model=self.ref, attempt=number, delay_s=round(delay, 2), error=str(exc))
        self.status.phase = f"retrying in {delay:.1f}s"
        try:
            await self.sleep(delay)
        except anyio.get_cancelled_exc_class():
            self.on_cancelled_wait(number + 1)
            raise
