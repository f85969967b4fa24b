"""The router: try a role's candidates in order, retry what can be retried, fall back.

It owns every retry (SDK retries are 0), skips a model whose circuit breaker is
open (breaker.py: a sustained failure rate, not one unlucky call), checks the
context window before each call, and records every attempt in the ledger. A
role's route is itself a `Model` (`RoutedModel`), so callers see one model
whatever happens underneath.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import structlog

from cadre_core import telemetry
from cadre_core.breaker import Breaker
from cadre_core.budget import RESERVE_INPUT_FACTOR, RESERVE_PRICE_FACTOR, Budget, BudgetExceededError, Caps, Held
from cadre_core.call import CallInfo
from cadre_core.config import CadreConfig, Candidate
from cadre_core.detectors import first_problem, tool_problem
from cadre_core.errors import (
    AllCandidatesFailedError,
    Attempt,
    ContextWindowError,
    MissingKeyError,
    ModelError,
    ModelNotFoundError,
    ModelTimeoutError,
)
from cadre_core.ledger import Ledger, LedgerRow
from cadre_core.logs import ensure_logging
from cadre_core.models import build_model
from cadre_core.models.base import Model, ModelRequest, ModelResponse, Usage
from cadre_core.models.refs import parse_model_ref
from cadre_core.pricing import price
from cadre_core.routing.checks import invalid
from cadre_core.routing.repair import repair_request

log = structlog.get_logger("cadre.router")

ModelFactory = Callable[[Candidate, CadreConfig], Model]
LONG_TIMEOUT_S = 120.0
"""A candidate that stayed silent this long is not retried; the next candidate is tried instead."""


class Router:
    """Routes requests for each role across its configured candidates."""

    def __init__(
        self,
        config: CadreConfig,
        ledger: Ledger | None = None,
        *,
        model_factory: ModelFactory | None = None,
        sleep: Callable[[float], object] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        budget: Budget | None = None,
    ):
        self.config = config
        self.ledger = ledger
        self.budget = budget
        ensure_logging()
        self.model_factory = model_factory or _default_factory
        self._sleep = sleep
        self._clock = clock
        self._models: dict[str, Model] = {}
        self._breakers: dict[str, Breaker] = {}
        self._call_ids = itertools.count(1)
        self._unpriced_warned: set[str] = set()

    def model(self, role: str, call: CallInfo | None = None, candidates: list[Candidate] | None = None) -> RoutedModel:
        """The role's route as one `Model`; `candidates` narrows it (e.g. to one vendor)."""
        return RoutedModel(self, role, call or CallInfo(), candidates)

    async def request(self, role: str, request: ModelRequest, call: CallInfo | None = None) -> ModelResponse:
        return await self.model(role, call).request(request)

    def candidates(self, role: str) -> list[Candidate]:
        role_cfg = self.config.roles.get(role)  # type: ignore[call-overload]
        return list(role_cfg.candidates) if role_cfg else []

    def availability(self, role: str) -> list[tuple[Candidate, str | None]]:
        """Each candidate with the reason it cannot be used now, or None."""
        return [(c, self._unavailable(c)[0]) for c in self.candidates(role)]

    def missing_keys(self, role: str) -> list[str]:
        """The env var that would key each keyless candidate of the role, in route order, once each."""
        return list(dict.fromkeys(env for c in self.candidates(role) if (env := self._unavailable(c)[1])))

    def _unavailable(self, candidate: Candidate) -> tuple[str | None, str]:
        """Why the candidate cannot be tried (or None), and the env var that would fix it."""
        provider, _ = parse_model_ref(candidate.model)
        if provider == "sampling":
            return None, ""
        settings = self.config.providers.get(provider)
        if settings is None:
            return f"no [providers.{provider}] config", ""
        if settings.key_required and not settings.api_key():
            names = settings.api_key_env or [f"{provider.upper()}_API_KEY"]
            return f"no API key; set {' or '.join(names)}", names[0]
        return None, ""

    def _get_model(self, candidate: Candidate) -> Model:
        if candidate.model not in self._models:
            self._models[candidate.model] = self.model_factory(candidate, self.config)
        return self._models[candidate.model]

    def breaker(self, model_ref: str) -> Breaker:
        """The circuit breaker of one (provider, model), shared by every role that routes to it."""
        key = ":".join(parse_model_ref(model_ref))
        if key not in self._breakers:
            cfg = self.config.router
            self._breakers[key] = Breaker(
                window=cfg.breaker_window,
                min_attempts=cfg.breaker_min_attempts,
                failure_rate=cfg.breaker_failure_rate,
                open_s=cfg.cooldown_s,
            )
        return self._breakers[key]

    def backoff(self, retry: int, retry_after: float | None) -> float:
        """Jittered exponential backoff that honours retry-after."""
        cfg = self.config.router
        base = min(cfg.backoff_max_s, cfg.backoff_initial_s * (2 ** (retry - 1)))
        delay = random.uniform(base / 2, base)  # noqa: S311 - jitter, not crypto
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    async def aclose(self) -> None:
        for model in self._models.values():
            await model.aclose()


@dataclass
class _Sent:
    """How a request fared on one candidate after its retries: the answer, or the last error."""

    response: ModelResponse | None
    error: ModelError | None
    number: int
    """The attempt number of the last try."""
    started: float


class RoutedModel(Model):
    """Fallback across a role's candidates, behind the plain `Model` interface."""

    provider = "route"

    def __init__(self, router: Router, role: str, call: CallInfo, candidates: list[Candidate] | None = None):
        super().__init__(role)
        self.router, self.role, self.call = router, role, call
        self.only = candidates
        self._flagged: ModelResponse | None = None
        """A flagged answer set aside to try the next candidate; returned if no later candidate answers."""
        self._id = 0
        """This request's id for the breakers (which call holds a half-open probe, which calls failed)."""

    async def request(self, request: ModelRequest) -> ModelResponse:
        router = self.router
        attempts: list[Attempt] = []
        self._flagged = None
        self._id = next(router._call_ids)
        candidates = self.only if self.only is not None else router.candidates(self.role)
        circuit_open: list[tuple[Candidate, ModelRequest, Model]] = []
        for index, candidate in enumerate(candidates):
            ready = await self._ready(candidate, request, attempts)
            if ready is None:
                continue
            if why := router.breaker(candidate.model).admit(self._id, router._clock()):
                attempts.append(Attempt(candidate.model, "skipped", why))
                circuit_open.append((candidate, *ready))
                continue
            answered, response = await self._enter(candidate, *ready, attempts, index == len(candidates) - 1)
            if answered:
                return response  # type: ignore[return-value]
        if self._flagged is None and circuit_open:  # before failing, try the open model that recovers first
            now = router._clock()
            candidate, sized, model = min(circuit_open, key=lambda c: router.breaker(c[0].model).retry_in(now))
            log.info("all open candidates skipped; trying the one that recovers first", model=candidate.model)
            answered, response = await self._enter(candidate, sized, model, attempts, True)
            if answered:
                return response  # type: ignore[return-value]
        if self._flagged is not None:  # paid for and usable: better than failing the call
            self._flagged.warnings.append("no later candidate answered, so the flagged answer is kept")
            return self._flagged
        hint = ""
        keyed = [a for a in attempts if not a.model.startswith("sampling:")]
        if keyed and all(a.outcome == "no_key" for a in keyed):
            keys = sorted({a.env_var for a in keyed if a.env_var})
            hint = f"No provider for role '{self.role}' has a key. Set one of: {', '.join(keys)}."
        raise AllCandidatesFailedError(self.role, attempts, hint)

    async def _ready(
        self, candidate: Candidate, request: ModelRequest, attempts: list[Attempt]
    ) -> tuple[ModelRequest, Model] | None:
        """The request sized for the candidate and its prepared model, or None (and why, in `attempts`)."""
        router, cfg = self.router, self.router.config
        skip, env = router._unavailable(candidate)
        if skip:
            attempts.append(Attempt(candidate.model, "no_key" if env else "skipped", skip, env_var=env))
            log.info("candidate skipped", role=self.role, model=candidate.model, reason=skip)
            return None
        sized = dataclasses.replace(
            request,
            max_output_tokens=request.max_output_tokens or candidate.max_output_tokens,
            effort=request.effort or candidate.effort,
        )
        window = cfg.context_window(candidate)
        need = sized.estimated_input_tokens() + sized.output_limit
        if window and need > window:
            err = ContextWindowError(
                f"prompt needs about {need:,} tokens with output; the window is {window:,}",
                provider=parse_model_ref(candidate.model)[0],
                model=candidate.model,
            )
            attempts.append(Attempt(candidate.model, "context_too_large", err.detail, type(err).__name__))
            return None
        try:
            model = router._get_model(candidate)
            await model.prepare()  # SDK imports and client set-up, before any time-out starts
        except MissingKeyError as exc:
            attempts.append(Attempt(candidate.model, "no_key", exc.detail, env_var=exc.env_var))
            return None
        if request.tools and not model.supports_tools:
            attempts.append(Attempt(candidate.model, "skipped", "does not support tool calls"))
            return None
        return sized, model

    async def _enter(
        self, candidate: Candidate, request: ModelRequest, model: Model, attempts: list[Attempt], last: bool
    ) -> tuple[bool, ModelResponse | None]:
        """Try one candidate: (True, answer) when the call is settled, (False, None) to go on."""
        try:
            response = await self._try_candidate(model, candidate, request, attempts, last)
        except (BudgetExceededError, ModelError) as exc:
            if self._flagged is None:
                raise
            self._flagged.warnings.append(f"the next candidate failed ({exc}), so the flagged answer is kept")
            return True, self._flagged
        finally:
            self.router.breaker(candidate.model).release(self._id)
        return response is not None, response

    async def _try_candidate(
        self,
        model: Model,
        candidate: Candidate,
        request: ModelRequest,
        attempts: list[Attempt],
        last: bool,
    ) -> ModelResponse | None:
        """The candidate's answer; an invalid one gets one repair turn, sent and retried like any other.
        None, with the reason in `attempts`, to go on to the next candidate."""
        turn, number, problem = request, 1, ""
        for repairing in (False, True):
            try:
                sent = await self._send(
                    model, candidate, turn, number, last, "repairing the answer" if repairing else "waiting for model"
                )
            except BudgetExceededError:
                if not repairing:
                    raise
                break
            if sent.response is None:
                exc = sent.error
                assert exc is not None
                why = f"the repair turn failed: {exc.detail} (the first answer was invalid: {problem})"
                latency = (time.perf_counter() - sent.started) * 1000
                attempts.append(
                    Attempt(candidate.model, "failed", why if repairing else exc.detail, type(exc).__name__, latency)
                )
                log.warning("candidate failed", role=self.role, model=candidate.model, error=str(exc))
                return None
            problem = invalid(request, sent.response) or ""
            if not problem:
                return self._accept(candidate, sent.number, sent.started, turn, sent.response, attempts, last)
            self._settle(candidate, sent.number, "off_rails", sent.started, sent.response, "invalid_structured_output",
                         problem)  # fmt: skip
            turn, number = repair_request(request, sent.response, problem), sent.number + 1
        attempts.append(Attempt(candidate.model, "off_rails", f"invalid structured output: {problem}"))
        return None

    async def _send(
        self,
        model: Model,
        candidate: Candidate,
        request: ModelRequest,
        number: int,
        last: bool,
        phase: str = "waiting for model",
    ) -> _Sent:
        """Send `request` to the candidate under its time-out, retrying transient errors with backoff.

        Each attempt reserves budget, settles it, feeds the breaker and gets a ledger row (the one that
        gives up is `fallback`, or `error` on the last candidate). Errors that neither retrying nor
        falling back can fix (auth, bad request), budget refusals, cancellations and bugs propagate."""
        router, cfg = self.router, self.router.config.router
        provider, name = parse_model_ref(candidate.model)
        breaker = router.breaker(candidate.model)
        timeout = candidate.timeout_s or _provider_timeout(router.config, provider)
        first = number
        while True:
            self.call.model, self.call.phase = candidate.model, phase
            started = time.perf_counter()
            reservation = self._reserve(candidate, request, number)
            response = late = None
            billed_unknown = False  # the provider may bill an attempt we stopped waiting for
            try:
                with anyio.fail_after(timeout):
                    response = await model.request(request)
                if time.perf_counter() - started > timeout:  # the loop was late to cancel: discard it
                    late, response = response, None
                    raise TimeoutError
            except anyio.get_cancelled_exc_class():
                billed_unknown = True
                self._record(candidate, number, "cancelled", started, error_class="Cancelled")
                raise
            except TimeoutError:
                billed_unknown = True
                exc: ModelError = ModelTimeoutError(f"no answer within {timeout:g} s", provider=provider, model=name)
                if timeout >= LONG_TIMEOUT_S:  # waiting that long again on the same model rarely pays: fall back
                    exc.retryable = False
            except ModelError as model_exc:
                exc = model_exc
                billed_unknown = isinstance(model_exc, ModelTimeoutError)
            except Exception as bug:
                self._record(candidate, number, "error", started, error_class=type(bug).__name__)
                raise
            finally:
                self._settle_budget(reservation, candidate, response or late, keep=billed_unknown)
            if response is not None:
                breaker.record(self._id, False, router._clock())
                return _Sent(response, None, number, started)
            if exc.retryable or isinstance(exc, ModelTimeoutError):
                breaker.record(self._id, True, router._clock(), _short(exc))
            elif isinstance(exc, ModelNotFoundError):
                breaker.trip(router._clock(), _short(exc))
            if not (exc.retryable or exc.fallback):
                self._record(candidate, number, "error", started, error_class=type(exc).__name__)
                raise exc
            too_long = exc.retry_after is not None and exc.retry_after > cfg.max_retry_after_s
            retry = number - first + 1
            cost = price(late.usage, provider, name)[0] if late else None
            if exc.retryable and retry <= cfg.retries_per_candidate and not too_long:
                self._record(candidate, number, "error", started, error_class=type(exc).__name__, response=late,
                             cost=cost)  # fmt: skip
                delay = router.backoff(retry, exc.retry_after)
                log.info("retrying", model=candidate.model, attempt=number, delay_s=round(delay, 2), error=str(exc))
                self.call.phase = f"retrying in {delay:.1f}s"
                try:
                    await router._sleep(delay)
                except anyio.get_cancelled_exc_class():
                    self._record(candidate, number + 1, "cancelled", time.perf_counter(), error_class="Cancelled")
                    raise
                number += 1
                continue
            outcome = "error" if last else "fallback"
            self._record(candidate, number, outcome, started, error_class=type(exc).__name__, response=late, cost=cost)
            return _Sent(None, exc, number, started)

    def _reserve(self, candidate: Candidate, request: ModelRequest, number: int) -> tuple[int, float] | None:
        """Hold the attempt's worst-case cost against the caps; refuse it (and record why) if it does not fit.

        Worst case: the input estimate x RESERVE_INPUT_FACTOR (the estimate counts characters, a tokenizer may
        count more) plus the full output limit, priced, x RESERVE_PRICE_FACTOR (cache-write premiums and
        long-context tiers). A model with no known price reserves nothing, and a warning says so. The input
        part and the attempt are kept with it, so a crash mid-call is settled at the input cost and explained."""
        budget = self.router.budget
        if budget is None:
            return None
        role_cfg = self.router.config.roles.get(self.role)  # type: ignore[call-overload]
        caps = Caps.from_config(self.router.config.budget, role_cfg.budget_per_day_usd if role_cfg else None)
        if not caps.any:
            return None
        provider, name = parse_model_ref(candidate.model)
        worst_input = int(request.estimated_input_tokens() * RESERVE_INPUT_FACTOR) + 1
        worst = Usage(input_tokens=worst_input, output_tokens=request.output_limit)
        priced = price(worst, provider, name)[0]
        if priced is None and candidate.model not in self.router._unpriced_warned:
            self.router._unpriced_warned.add(candidate.model)
            log.warning("no price known; budget caps cannot limit this model", model=candidate.model)
        amount = (priced or 0.0) * RESERVE_PRICE_FACTOR
        input_usd = (price(Usage(input_tokens=worst_input), provider, name)[0] or 0.0) * RESERVE_PRICE_FACTOR
        timeout = candidate.timeout_s or _provider_timeout(self.router.config, provider)
        held = Held(candidate.model, self.call.server, self.call.tool, number, input_usd, worst_input, timeout)
        try:
            return budget.reserve(caps, amount, role=self.role, thread_id=self.call.thread_id, held=held), amount
        except BudgetExceededError:
            self._record(candidate, number, "budget_refused", time.perf_counter(), error_class="BudgetExceededError")
            raise

    def _settle_budget(
        self, reservation: tuple[int, float] | None, candidate: Candidate, response: ModelResponse | None, keep: bool
    ) -> None:
        """Settle to the real cost; an attempt cut off by a time-out or cancellation keeps its reservation,
        since the provider may still bill it."""
        if reservation is None or self.router.budget is None:
            return
        held, amount = reservation
        cost = None
        if response is not None:
            cost = price(response.usage, *parse_model_ref(candidate.model))[0]
        self.router.budget.settle(held, amount if keep and response is None else (cost or 0.0))

    def _accept(
        self,
        candidate: Candidate,
        number: int,
        started: float,
        request: ModelRequest,
        response: ModelResponse,
        attempts: list[Attempt],
        last: bool,
    ) -> ModelResponse | None:
        """Record a valid answer; if a detector flags it, keep it with a warning or fall back, per role policy."""
        flagged = first_problem(response) or tool_problem(request, response)
        if flagged is None:
            self._settle(candidate, number, "ok", started, response)
            return response
        name, reason = flagged
        self._settle(candidate, number, "off_rails", started, response, detector=name, message=reason)
        role_cfg = self.router.config.roles.get(self.role)  # type: ignore[call-overload]
        if role_cfg is not None and role_cfg.off_rails == "fallback" and not last:
            attempts.append(Attempt(candidate.model, "off_rails", f"{name}: {reason}"))
            response.warnings.append(f"{candidate.model} answer flagged by {name}: {reason}")
            self._flagged = self._flagged or response
            return None
        response.warnings.append(f"{candidate.model} answer flagged by {name}: {reason}")
        return response

    def _settle(
        self,
        candidate: Candidate,
        number: int,
        outcome: str,
        started: float,
        response: ModelResponse,
        detector: str | None = None,
        message: str | None = None,
    ) -> None:
        """Price a finished attempt, label the response, and record it (with why it was flagged, if it was)."""
        provider, name = parse_model_ref(candidate.model)
        cost, version = price(response.usage, provider, name)
        response.cost_usd = cost
        response.model = candidate.model
        self.call.usage_cost_usd += cost or 0.0
        self.call.usage = self.call.usage + response.usage
        self.call.unpriced = self.call.unpriced or cost is None
        self._record(
            candidate, number, outcome, started, response=response, cost=cost, version=version, detector=detector,
            message=message,
        )  # fmt: skip

    def _record(
        self,
        candidate: Candidate,
        number: int,
        outcome: str,
        started: float,
        *,
        error_class: str | None = None,
        response: ModelResponse | None = None,
        cost: float | None = None,
        version: str | None = None,
        detector: str | None = None,
        message: str | None = None,
    ) -> None:
        if self.router.ledger is None and not telemetry.enabled():
            return
        provider, model_name = parse_model_ref(candidate.model)
        usage = response.usage if response else None
        row = LedgerRow(
            role=self.role,
            provider=provider,
            model=model_name,
            outcome=outcome,  # type: ignore[arg-type]
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
        if self.router.ledger is not None:
            self.router.ledger.record(row)


def _short(exc: ModelError) -> str:
    """An error's detail, cut for a breaker message."""
    return exc.detail if len(exc.detail) <= 100 else exc.detail[:99] + "…"


def _provider_timeout(config: CadreConfig, provider: str) -> float:
    settings = config.providers.get(provider)
    return settings.timeout_s if settings else 900.0


def _default_factory(candidate: Candidate, config: CadreConfig) -> Model:
    provider, _ = parse_model_ref(candidate.model)
    return build_model(candidate.model, config.providers.get(provider))
