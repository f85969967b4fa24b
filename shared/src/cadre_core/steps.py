"""The model steps of a background job, kept so a run that takes the job over does not pay for them again.

While a job runs, `Kit.call_model` asks `current_steps()`: each answered model call is stored under the
job id and the digest of its (redacted) request, numbered by how often that request came up. When another
process or replica re-runs the job after its owner died, the same request finds its stored answer and gets it
back without calling the provider, without a budget reservation and without a ledger row: it was paid and
recorded once, by the run that made it. A request that differs (a file changed meanwhile) is called afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from cadre_core.models.base import ModelRequest, ModelResponse, ToolCall, Usage

if TYPE_CHECKING:
    from cadre_core.call import CallInfo

log = structlog.get_logger("cadre.steps")


class StepStore(Protocol):
    def step(self, job_id: str, step: str) -> dict[str, Any] | None: ...

    def save_step(self, job_id: str, step: str, response: dict[str, Any]) -> None: ...


def _plain(value: object) -> object:
    """JSON for what a request holds: dataclasses as dicts, bytes (attachments) by their hash."""
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} is not JSON")


def request_digest(request: ModelRequest) -> str:
    """A digest of everything `request` sends (`validate`, a check run on the answer, is not sent)."""
    sent = {f.name: getattr(request, f.name) for f in dataclasses.fields(request) if f.compare}
    return hashlib.sha256(json.dumps(sent, sort_keys=True, default=_plain).encode()).hexdigest()[:32]


def response_to_dict(response: ModelResponse) -> dict[str, Any]:
    return dataclasses.asdict(response)


def response_from_dict(data: dict[str, Any]) -> ModelResponse:
    return ModelResponse(
        **{
            **data,
            "tool_calls": [ToolCall(**c) for c in data.get("tool_calls", [])],
            "usage": Usage(**data.get("usage", {})),
        }
    )


class StepLog:
    """The stored model steps of one job run (see the module doc)."""

    def __init__(self, store: StepStore, job_id: str):
        self.store, self.job_id = store, job_id
        self._seen: Counter[str] = Counter()
        self.replayed = 0

    def key(self, request: ModelRequest) -> str:
        """This request's step key: its digest and how many times this run has sent it."""
        digest = request_digest(request)
        self._seen[digest] += 1
        return f"{digest}:{self._seen[digest]}"

    def replay(self, key: str, call: CallInfo) -> ModelResponse | None:
        """The stored answer to step `key`, its spend added to `call` (for the job's result), or None."""
        try:
            stored = self.store.step(self.job_id, key)
        except Exception as exc:  # a store that cannot be read only means paying again
            log.warning("job step not read; calling the model", job_id=self.job_id, error=str(exc))
            return None
        if stored is None:
            return None
        response = response_from_dict(stored["response"])
        call.usage_cost_usd += stored.get("spent_usd") or 0.0
        call.usage = call.usage + response.usage
        call.model = response.model
        self.replayed += 1
        log.info("job step replayed from the store; the provider is not called", job_id=self.job_id, step=key)
        return response

    def keep(self, key: str, response: ModelResponse, spent_usd: float) -> None:
        """Store an answered step and what it cost (every attempt of it), so a takeover replays it."""
        try:
            self.store.save_step(self.job_id, key, {"response": response_to_dict(response), "spent_usd": spent_usd})
        except Exception as exc:  # the answer is still good; only a takeover would pay for it again
            log.warning("job step not stored", job_id=self.job_id, error=str(exc))


_current: ContextVar[StepLog | None] = ContextVar("cadre_job_steps", default=None)


def current_steps() -> StepLog | None:
    """The step log of the job running in this context, or None outside a job."""
    return _current.get()


@contextmanager
def recording_steps(log_: StepLog) -> Iterator[StepLog]:
    """Store (and replay) the model steps made in this block as `log_`'s job's."""
    token = _current.set(log_)
    try:
        yield log_
    finally:
        _current.reset(token)
