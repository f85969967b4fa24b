"""A circuit breaker per model: skip a provider only while it fails most of its recent attempts.

Closed: every attempt goes through; the outcomes of the last `window` attempts are kept.
It opens when at least `min_attempts` of them are known, `failure_rate` of them failed, and the
failures came from at least two calls (one unlucky call never opens it). Open: callers skip the
model for `open_s` seconds. Then half-open: one call probes it; a success closes the breaker and
forgets the failures, a failure opens it again. With `open_s` 0 it never opens.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MIN_FAILING_CALLS = 2


@dataclass
class Breaker:
    """One model's breaker; the caller passes the clock's `now` to every method."""

    window: int = 10
    min_attempts: int = 5
    failure_rate: float = 0.8
    open_s: float = 60.0
    _recent: deque[tuple[int, bool]] = field(init=False)
    """(call id, failed) of the last `window` attempts, oldest first."""
    _opened_at: float | None = None
    _last_error: str = ""
    _opened_because: str = ""
    _probe: int | None = None
    """The call probing a half-open breaker."""

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.window)

    def state(self, now: float) -> str:
        """The state: closed, open (skip the model) or half_open (one call may probe it)."""
        if self._opened_at is None:
            return "closed"
        return "open" if now < self._opened_at + self.open_s else "half_open"

    def retry_in(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        return max(0.0, self._opened_at + self.open_s - now) if self._opened_at is not None else 0.0

    def admit(self, call: int, now: float) -> str | None:
        """None if `call` may try the model now (taking the probe when half-open), else why not."""
        state = self.state(now)
        if state == "closed" or self._probe == call:
            return None
        if state == "half_open" and self._probe is None:
            self._probe = call
            return None
        why = f"circuit open after {self._opened_because} (last: {self._last_error})"
        if state == "half_open":
            return f"{why}; another call is probing it now"
        return f"{why}; retry in {self.retry_in(now):.0f} s"

    def release(self, call: int) -> None:
        """`call` is done with the model: a probe that recorded nothing (cancelled) frees the slot."""
        if self._probe == call:
            self._probe = None

    def record(self, call: int, failed: bool, now: float, error: str = "") -> None:
        """An attempt's outcome: `failed` for a transient provider fault, else the model answered."""
        if not failed:  # any answer, a probe's or a late one's, shows the model is back
            if self._opened_at is None:
                self._recent.append((call, False))
            else:
                self._opened_at, self._probe = None, None
                self._recent.clear()
            return
        self._last_error = error or "unknown error"
        if self._opened_at is not None:
            if self._probe == call or self.state(now) == "half_open":  # the probe failed: open again
                self._opened_at, self._probe, self._opened_because = now, None, "a probe failed"
            return
        self._recent.append((call, True))
        if self._sustained():
            failures = sum(f for _, f in self._recent)
            self._opened_at = now
            self._opened_because = f"{failures} of {len(self._recent)} recent attempts failed"

    def trip(self, now: float, error: str) -> None:
        """Open at once for a failure that retrying cannot fix soon (a model the provider does not know)."""
        if self.open_s <= 0:
            return
        self._probe, self._opened_at = None, now
        self._last_error, self._opened_because = error, "a permanent error"

    def _sustained(self) -> bool:
        if self.open_s <= 0 or len(self._recent) < self.min_attempts:
            return False
        failing = [c for c, f in self._recent if f]
        return len(failing) >= self.failure_rate * len(self._recent) and len(set(failing)) >= MIN_FAILING_CALLS
