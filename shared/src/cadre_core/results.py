"""What every model-backed tool result reports: the model shown to users and the token keys."""

from __future__ import annotations

from cadre_core.models.refs import is_host

NO_TOKENS = {"input": 0, "output": 0, "reasoning": 0, "cache_read": 0}


def shown_model(model: str) -> str:
    """`host` for the MCP host's model, else `provider:model`."""
    return "host" if is_host(model) else model
