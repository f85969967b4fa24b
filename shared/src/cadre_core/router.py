"""The router: a role's candidates and the shared state behind its route.

It holds what outlives one request: the config, the ledger, the budget, each candidate's provider model
(SDK retries are 0: the route owns retries) and each (provider, model)'s circuit breaker (breaker.py).
The route itself, a `Model` made of small wrappers, is put together in routing/compose.py.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

from cadre_core.breaker import Breaker
from cadre_core.budget import Budget
from cadre_core.call import CallInfo
from cadre_core.config import CadreConfig, Candidate, RoleConfig
from cadre_core.ledger import Ledger
from cadre_core.logs import ensure_logging
from cadre_core.models import build_model
from cadre_core.models.base import Model, ModelRequest, ModelResponse
from cadre_core.models.refs import parse_model_ref
from cadre_core.routing.compose import route
from cadre_core.routing.fallback import FallbackModel
from cadre_core.routing.retry import RetryPolicy

ModelFactory = Callable[[Candidate, CadreConfig], Model]
DEFAULT_TIMEOUT_S = 900.0


class Router:
    """Routes requests for each role across its configured candidates."""

    def __init__(
        self,
        config: CadreConfig,
        ledger: Ledger | None = None,
        *,
        model_factory: ModelFactory | None = None,
        sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        budget: Budget | None = None,
    ):
        self.config = config
        self.ledger = ledger
        self.budget = budget
        ensure_logging()
        self.model_factory = model_factory or _default_factory
        self.sleep = sleep
        self.clock = clock
        self.retry_policy = RetryPolicy.from_config(config.router)
        self._models: dict[str, Model] = {}
        self._breakers: dict[str, Breaker] = {}

    def model(
        self, role: str, call: CallInfo | None = None, candidates: list[Candidate] | None = None
    ) -> FallbackModel:
        """The role's route as one `Model`; `candidates` narrows it (e.g. to one vendor)."""
        return route(self, role, call or CallInfo(), candidates)

    async def request(self, role: str, request: ModelRequest, call: CallInfo | None = None) -> ModelResponse:
        return await self.model(role, call).request(request)

    def role_config(self, role: str) -> RoleConfig | None:
        return self.config.role_config(role)

    def candidates(self, role: str) -> list[Candidate]:
        role_cfg = self.role_config(role)
        return list(role_cfg.candidates) if role_cfg else []

    def availability(self, role: str) -> list[tuple[Candidate, str | None]]:
        """Each candidate with the reason it cannot be used now, or None."""
        return [(c, self.unavailable(c)[0]) for c in self.candidates(role)]

    def missing_keys(self, role: str) -> list[str]:
        """The env var that would key each keyless candidate of the role, in route order, once each."""
        return list(dict.fromkeys(env for c in self.candidates(role) if (env := self.unavailable(c)[1])))

    def unavailable(self, candidate: Candidate) -> tuple[str | None, str]:
        """Why the candidate cannot be tried (or None), and the env var that would fix it."""
        provider, _ = parse_model_ref(candidate.model)
        if provider == "sampling":
            return None, ""
        settings = self.config.provider_config(provider)
        if settings is None:
            return f"no [providers.{provider}] config", ""
        if settings.key_required and not settings.api_key():
            names = settings.api_key_env or [f"{provider.upper()}_API_KEY"]
            return f"no API key; set {' or '.join(names)}", names[0]
        return None, ""

    def provider_model(self, candidate: Candidate) -> Model:
        """The candidate's provider model, built once and shared by every request."""
        if candidate.model not in self._models:
            self._models[candidate.model] = self.model_factory(candidate, self.config)
        return self._models[candidate.model]

    def provider_timeout(self, model_ref: str) -> float:
        settings = self.config.provider_config(parse_model_ref(model_ref)[0])
        return settings.timeout_s if settings else DEFAULT_TIMEOUT_S

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
        return self.retry_policy.backoff(retry, retry_after)

    async def aclose(self) -> None:
        for model in self._models.values():
            await model.aclose()


def _default_factory(candidate: Candidate, config: CadreConfig) -> Model:
    provider, _ = parse_model_ref(candidate.model)
    return build_model(candidate.model, config.provider_config(provider))
