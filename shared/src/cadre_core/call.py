"""`CallInfo`: one tool call's identity for the ledger and its live status for the heartbeat."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from cadre_core.models.base import Usage


@dataclass
class CallInfo:
    """Who is calling, for the ledger, plus live status for the heartbeat."""

    server: str = ""
    tool: str = ""
    thread_id: str | None = None
    model: str = ""
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    usage_cost_usd: float = 0.0
    """Cost of every priced attempt so far (failed, off-rails and repair attempts included)."""
    usage: Usage = field(default_factory=Usage)
    unpriced: bool = False

    @property
    def cost_usd(self) -> float | None:
        """What the call cost, rounded; None when it paid only for unpriced models."""
        return None if self.unpriced and not self.usage_cost_usd else round(self.usage_cost_usd, 6)
