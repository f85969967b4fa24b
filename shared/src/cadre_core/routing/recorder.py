"""Recording: every attempt is priced, written to the ledger and traced (telemetry.py), in one place."""

from __future__ import annotations

import time

import anyio

from cadre_core import telemetry
from cadre_core.budget import BudgetExceededError
from cadre_core.call import CallInfo
from cadre_core.errors import ModelError, ModelTimeoutError
from cadre_core.ledger import Ledger, LedgerRow, Outcome
from cadre_core.models.base import Model, ModelRequest, ModelResponse
from cadre_core.models.refs import parse_model_ref
from cadre_core.pricing import price
from cadre_core.routing.checks import OffRailsError
from cadre_core.routing.wrapper import Tries, WrapperModel


class Recorder(WrapperModel):
    """One ledger row and one span per attempt through it; an answer (flagged or not) is priced, labelled
    with the candidate and added to the call's totals.

    The outcome: `ok`; `off_rails` (with the check's name and why); `cancelled`; `budget_refused`; for a
    failure, `error` while it will be retried, when nothing can fix it or on the last candidate, else
    `fallback` (the next candidate is tried)."""

    def __init__(
        self,
        wrapped: Model,
        *,
        ref: str,
        role: str,
        call: CallInfo,
        ledger: Ledger | None,
        tries: Tries,
        last: bool,
    ):
        super().__init__(wrapped)
        self.ref, self.role, self.call, self.ledger, self.tries, self.last = ref, role, call, ledger, tries, last

    async def request(self, request: ModelRequest) -> ModelResponse:
        started, number = time.perf_counter(), self.tries.number
        try:
            response = await self.wrapped.request(request)
        except OffRailsError as flagged:
            self._answered(number, "off_rails", started, flagged.response, flagged.detector, flagged.reason)
            raise
        except anyio.get_cancelled_exc_class():
            self.record(number, "cancelled", started, error_class="Cancelled")
            raise
        except BudgetExceededError:
            self.record(number, "budget_refused", started, error_class="BudgetExceededError")
            raise
        except ModelError as exc:
            late = exc.late_response if isinstance(exc, ModelTimeoutError) else None
            cost = price(late.usage, *parse_model_ref(self.ref))[0] if late else None
            outcome = self._failure_outcome(exc)
            self.record(number, outcome, started, error_class=type(exc).__name__, response=late, cost=cost)
            raise
        except Exception as bug:
            self.record(number, "error", started, error_class=type(bug).__name__)
            raise
        self._answered(number, "ok", started, response)
        return response

    def cancelled_before_start(self, number: int) -> None:
        """Record attempt `number`, cancelled while it waited to start (during a backoff)."""
        self.record(number, "cancelled", time.perf_counter(), error_class="Cancelled")

    def _failure_outcome(self, exc: ModelError) -> Outcome:
        if not (exc.retryable or exc.fallback) or self.tries.will_retry(exc) or self.last:
            return "error"
        return "fallback"

    def _answered(
        self,
        number: int,
        outcome: Outcome,
        started: float,
        response: ModelResponse,
        detector: str | None = None,
        message: str | None = None,
    ) -> None:
        """Price an answer, label it, add it to the call's totals and record it."""
        if response.billing == "api":
            cost, version = price(response.usage, *parse_model_ref(self.ref))
        else:  # a CLI agent's own report, or null on a subscription
            cost, version = response.cost_usd, None
        message = "; ".join(m for m in (message, response.ledger_note) if m) or None
        response.cost_usd, response.model = cost, self.ref
        self.call.usage_cost_usd += cost or 0.0
        self.call.usage = self.call.usage + response.usage
        self.call.unpriced = self.call.unpriced or cost is None
        self.record(number, outcome, started, response=response, cost=cost, version=version, detector=detector,
                    message=message)  # fmt: skip

    def record(
        self,
        number: int,
        outcome: Outcome,
        started: float,
        *,
        error_class: str | None = None,
        response: ModelResponse | None = None,
        cost: float | None = None,
        version: str | None = None,
        detector: str | None = None,
        message: str | None = None,
    ) -> None:
        """Write attempt `number`'s ledger row and span (nothing when neither is on)."""
        if self.ledger is None and not telemetry.enabled():
            return
        provider, model_name = parse_model_ref(self.ref)
        usage = response.usage if response else None
        row = LedgerRow(
            role=self.role,
            provider=provider,
            model=model_name,
            outcome=outcome,
            server=self.call.server,
            tool=self.call.tool,
            thread_id=self.call.thread_id,
            attempt=number,
            error_class=error_class,
            detector=detector,
            message=message,
            input_tokens=usage.input_tokens if usage else 0,
            cache_read_tokens=usage.cache_read_tokens if usage else 0,
            cache_write_tokens=usage.cache_write_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            reasoning_tokens=usage.reasoning_tokens if usage else 0,
            cost_usd=cost,
            price_version=version,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
        telemetry.record_attempt(row, response)
        if self.ledger is not None:
            self.ledger.record(row)
