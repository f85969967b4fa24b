"""Where a role's route is put together: the one place that shows the whole stack.

FallbackModel over the role's candidates; for each candidate, outermost first:
  OffRailsPolicy  a flagged answer: kept with a warning, or set aside for the next candidate
  Repairing       an invalid answer: one repair turn, through everything below
  Retrying        transient errors retried with backoff; the circuit breaker fed
  Recorder        one priced ledger row and span per attempt
  CheckedModel    the validator and the detectors, raising OffRailsError
  BudgetedModel   reserve the worst case, settle to the real cost (when a cap is set)
  TimeLimit       the candidate's time-out
  the provider's model (prepared, SDK warmed up, before any of this runs)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from cadre_core.budget import BudgetedModel, Caps
from cadre_core.call import CallInfo
from cadre_core.config import Candidate
from cadre_core.errors import Attempt, ContextWindowError, InputLimitError, MissingKeyError
from cadre_core.models.base import Model, ModelRequest
from cadre_core.models.refs import parse_model_ref
from cadre_core.routing.checks import CheckedModel
from cadre_core.routing.fallback import FallbackModel, Ready
from cadre_core.routing.policy import OffRailsPolicy
from cadre_core.routing.recorder import Recorder
from cadre_core.routing.repair import Repairing
from cadre_core.routing.retry import Retrying, TimeLimit
from cadre_core.routing.wrapper import Tries

if TYPE_CHECKING:
    from cadre_core.router import Router

log = structlog.get_logger("cadre.router")


def route(router: Router, role: str, call: CallInfo, candidates: list[Candidate] | None = None) -> FallbackModel:
    """The role's route as one `Model`; `candidates` narrows it (e.g. to one vendor)."""
    chosen = candidates if candidates is not None else router.candidates(role)
    return FallbackModel(role, [CandidateChoice(router, role, call, c) for c in chosen], clock=router.clock)


class CandidateChoice:
    """One configured candidate of a role: when it can take a request, and its stack of wrappers."""

    def __init__(self, router: Router, role: str, call: CallInfo, candidate: Candidate):
        self.router, self.role, self.call, self.candidate = router, role, call, candidate
        self.ref = candidate.model
        self.breaker = router.breaker(candidate.model)

    async def ready(self, request: ModelRequest) -> Ready | Attempt:
        """The request sized for the candidate, or why it is skipped: no key or config, a window too small,
        tool calls it cannot make. Its SDK is imported and warmed up here, before any time-out starts."""
        candidate, ref = self.candidate, self.ref
        skip, env = self.router.unavailable(candidate)
        if skip:
            log.info("candidate skipped", role=self.role, model=ref, reason=skip)
            return Attempt(ref, "no_key" if env else "skipped", skip, env_var=env)
        if request.adapt is not None:  # fitted to this candidate's vendor: a fallback refits from the original
            try:
                request = await _adapted(request, parse_model_ref(ref)[0])
            except InputLimitError as exc:
                return Attempt(ref, "skipped", str(exc), type(exc).__name__)
        sized = dataclasses.replace(
            request,
            max_output_tokens=request.max_output_tokens or candidate.max_output_tokens,
            effort=request.effort or candidate.effort,
        )
        window = self.router.config.context_window(candidate)
        need = sized.estimated_input_tokens() + sized.output_limit
        if window and need > window:
            err = ContextWindowError(
                f"prompt needs about {need:,} tokens with output; the window is {window:,}",
                provider=parse_model_ref(ref)[0],
                model=ref,
            )
            return Attempt(ref, "context_too_large", err.detail, type(err).__name__)
        try:
            model = self.router.provider_model(candidate)
            await model.prepare()
        except MissingKeyError as exc:
            return Attempt(ref, "no_key", exc.detail, env_var=exc.env_var)
        if request.tools and not model.supports_tools:
            return Attempt(ref, "skipped", "does not support tool calls")
        return Ready(sized, lambda call_id, last: self.stack(model, call_id, last))

    def stack(self, model: Model, call_id: int, last: bool) -> Model:
        """The candidate's wrappers around its provider model, for one routed request."""
        router, ref, call, role = self.router, self.ref, self.call, self.role
        tries = Tries()
        timeout = self.candidate.timeout_s or router.provider_timeout(ref)
        attempt: Model = TimeLimit(model, timeout, ref=ref)
        role_cfg = router.role_config(role)
        if router.budget is not None:
            caps = Caps.from_config(router.config.budget, role_cfg.budget_per_day_usd if role_cfg else None)
            if caps.any:
                attempt = BudgetedModel(attempt, router.budget, caps, ref=ref, role=role, call=call, tries=tries,
                                        timeout_s=timeout)  # fmt: skip
        recorder = Recorder(CheckedModel(attempt), ref=ref, role=role, call=call, ledger=router.ledger, tries=tries,
                            last=last)  # fmt: skip
        retried = Retrying(recorder, ref=ref, policy=router.retry_policy,
                           breaker=self.breaker, call_id=call_id, tries=tries, status=call, clock=router.clock,
                           sleep=router.sleep, on_cancelled_wait=recorder.cancelled_before_start)  # fmt: skip
        fall_back = role_cfg is not None and role_cfg.off_rails == "fallback" and not last
        return OffRailsPolicy(Repairing(retried, tries), ref=ref, fall_back=fall_back)


async def _adapted(request: ModelRequest, provider: str) -> ModelRequest:
    """`request.adapt` for `provider`, off the event loop (it may decode and re-encode images)."""
    import anyio

    adapt = request.adapt
    assert adapt is not None
    adapted = await anyio.to_thread.run_sync(lambda: adapt(request, provider))
    return dataclasses.replace(adapted, adapt=None)
