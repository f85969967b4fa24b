"""Models: one module per provider behind one small async interface.

Provider SDKs are imported only when a model is built and used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cadre_core.errors import MissingKeyError
from cadre_core.models.base import (
    Effort,
    FinishReason,
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolDefinition,
    Usage,
)
from cadre_core.models.refs import CLI_PROVIDERS, PROVIDERS, is_image_model, parse_model_ref

if TYPE_CHECKING:
    from cadre_core.config import ProviderConfig
    from cadre_core.models.base import ProviderModel
    from cadre_core.models.cli_agent import CliAgentModel

__all__ = [
    "PROVIDERS",
    "Effort",
    "FinishReason",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ToolCall",
    "ToolDefinition",
    "Usage",
    "build_model",
    "parse_model_ref",
]

_CLASSES = {
    "anthropic": ("cadre_core.models.anthropic", "AnthropicModel"),
    "openai": ("cadre_core.models.openai", "OpenAIModel"),
    "google": ("cadre_core.models.google", "GoogleModel"),
    "openai_compatible": ("cadre_core.models.openai_compatible", "OpenAICompatibleModel"),
}
_CLI_CLASSES = {
    "codex_cli": ("cadre_core.models.codex_cli", "CodexCliModel"),
    "claude_cli": ("cadre_core.models.claude_cli", "ClaudeCliModel"),
    "gemini_cli": ("cadre_core.models.gemini_cli", "GeminiCliModel"),
}


def cli_agent_class(provider: str) -> type[CliAgentModel]:
    """The model class of a CLI agent provider (`codex_cli`, ...)."""
    import importlib

    module, cls_name = _CLI_CLASSES[provider]
    cls: type[CliAgentModel] = getattr(importlib.import_module(module), cls_name)
    return cls


def build_model(ref: str, settings: ProviderConfig | None = None, *, http_client: Any = None) -> Model:
    """A model for `provider:model`, configured from its provider settings."""
    import importlib

    provider, name = parse_model_ref(ref)
    if provider == "sampling":
        from cadre_core.models.sampling import SamplingModel

        return SamplingModel(name)
    if provider in CLI_PROVIDERS:
        return cli_agent_class(provider)(name, command=settings.command if settings else None,
                   allow_writes=bool(settings and settings.allow_writes),
                   timeout_s=settings.timeout_s if settings else 900.0)  # fmt: skip
    module, cls_name = _CLASSES[provider]
    if is_image_model(provider, name):  # the Images API, not the Responses API
        module, cls_name = "cadre_core.models.openai_images", "OpenAIImageModel"
    cls: type[ProviderModel] = getattr(importlib.import_module(module), cls_name)
    key = settings.api_key() if settings else None
    key_env = (settings.api_key_env[0] if settings and settings.api_key_env else None) or cls.key_env
    if not key and (settings is None or settings.key_required):
        raise MissingKeyError(provider=provider, env_var=key_env, model=name)
    pins: dict[str, Any] = {}
    if provider == "openai_compatible" and settings is not None:
        pins = {"structured_output": settings.structured_output, "tools": settings.tools}
    return cls(
        name,
        **pins,
        api_key=key,
        base_url=settings.resolved_base_url() if settings else None,
        timeout_s=settings.timeout_s if settings else 900.0,
        http_client=http_client,
        key_env=key_env,
    )
