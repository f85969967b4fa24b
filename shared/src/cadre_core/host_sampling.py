"""Asking the MCP host's own model (`sampling:host`): from a tool body, or through a `Sample` resolver.

On MCP 2026-07-28 and later only a resolver reaches the host, before the tool body runs; on older
protocols the tool body asks through the session. Either way the host is the last resort: it answers
only when no provider key can serve the role.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from mcp.server.mcpserver import Context

from cadre_core.errors import NoHostSamplingError, SamplingUnavailableError
from cadre_core.models.base import ModelRequest, ModelResponse
from cadre_core.models.refs import HOST, is_host
from cadre_core.models.sampling import from_sample_result, to_sample_args

if TYPE_CHECKING:
    import mcp_types
    from mcp.server.mcpserver import Sample

    from cadre_core.kit import Kit

log = structlog.get_logger("cadre.host_sampling")


class ContextSampler:
    """Samples the host's model for one tool call; `preresolved` is the host's reply a `Sample`
    resolver already obtained, used once."""

    def __init__(self, ctx: Context | None, preresolved: mcp_types.CreateMessageResult | None = None):
        self.ctx, self.preresolved = ctx, preresolved

    async def sample(self, request: ModelRequest) -> ModelResponse:
        if self.preresolved is not None:
            result, self.preresolved = self.preresolved, None
            return from_sample_result(result, request)
        ctx = self.ctx
        caps = ctx.client_capabilities if ctx is not None else None
        if ctx is None or caps is None or caps.sampling is None:
            raise NoHostSamplingError(provider="sampling", model="host")
        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

        if ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:  # only a `Sample` resolver reaches the host
            raise SamplingUnavailableError(
                "on this MCP version the host's model is asked only when no provider key is set, once per call",
                provider="sampling",
                model="host",
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                result = await ctx.session.create_message(**to_sample_args(request))
            except Exception as exc:
                raise SamplingUnavailableError(
                    f"the host refused or failed ({exc})", provider="sampling", model="host"
                ) from exc
        return from_sample_result(result, request)


def host_sample_request(
    ctx: Context, kit: Kit, build: Callable[[], ModelRequest | None], role: str | None = None
) -> Sample | None:
    """For a `Sample` resolver: the marker to ask the host's model, or None.

    Returns a `Sample` only on MCP 2026-07-28 and later (older protocols sample from the tool body,
    where a refusal is handled), when no keyed provider can serve the role, the role's route has the
    host (`sampling:host`) and the host declared sampling: the host is asked only as a last resort.
    `build` runs only in that case and may return None (nothing worth asking). Never raises: a failure
    here means no `Sample`, and the tool body reports the real problem."""
    from mcp.server.mcpserver import Sample
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    from cadre_core.redact import redact_request

    try:
        caps = ctx.client_capabilities
        if caps is None or caps.sampling is None or ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
            return None
        available = kit.router.availability(role or kit.role)
        if kit.keyed(role) or not any(is_host(c.model) and why is None for c, why in available):
            return None
        request = build()
        if request is None:
            return None
        request = redact_request(request)
        if request.adapt is not None:  # fitted to what the host takes (images only, say)
            request = request.adapt(request, HOST)
        return Sample(**to_sample_args(request))
    except Exception as exc:
        log.debug("no host sample", error=repr(exc))
        return None
