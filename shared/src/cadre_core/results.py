"""What every model-backed tool result reports: the model shown to users, its cost and tokens."""

from __future__ import annotations

from typing import Any

from cadre_core.models.refs import is_host

NO_TOKENS = {"input": 0, "output": 0, "reasoning": 0, "cache_read": 0}


def totals(call: Any) -> tuple[float | None, dict[str, int]]:
    """A tool call's cost (every attempt, failed and repaired ones included) and its tokens."""
    u = call.usage
    cost = None if call.unpriced and not call.usage_cost_usd else round(call.usage_cost_usd, 6)
    return cost, {"input": u.input_tokens, "output": u.output_tokens, "reasoning": u.reasoning_tokens,
                  "cache_read": u.cache_read_tokens}  # fmt: skip


def shown_model(model: str) -> str:
    """`host` for the MCP host's model, else `provider:model`."""
    return "host" if is_host(model) else model
