"""`provider:model` strings, parsed in one place: every other module asks here."""

from __future__ import annotations

from functools import lru_cache

CLI_PROVIDERS: tuple[str, ...] = ("codex_cli", "claude_cli", "gemini_cli")
"""Vendor CLI agents run as subprocesses on the user's own login (models/cli_agent.py)."""
PROVIDERS: tuple[str, ...] = ("anthropic", "openai", "google", "openai_compatible", *CLI_PROVIDERS, "sampling")
HOST = "sampling"
"""The provider that stands for the MCP host's own model (`sampling:host`)."""
_ALIASES = {"gemini": "google", "google-gla": "google", "openai-compatible": "openai_compatible"}


@lru_cache(maxsize=512)  # a route asks about the same few refs on every attempt
def parse_model_ref(ref: str) -> tuple[str, str]:
    """Split `provider:model` into its parts, the provider lower-case and canonical (`gemini` -> `google`);
    raise ValueError naming the fix."""
    provider, sep, model = ref.strip().partition(":")
    provider = _ALIASES.get(provider.lower(), provider.lower())
    if not sep or not model:
        if provider == HOST:
            return HOST, "host"
        raise ValueError(
            f"model '{ref}' must be written 'provider:model', e.g. 'openai:gpt-5.2'; "
            f"providers are {', '.join(PROVIDERS)}"
        )
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider '{provider}' in '{ref}'; use one of {', '.join(PROVIDERS)}")
    return provider, model


def canonical_ref(ref: str) -> str:
    """`ref` as `provider:model` with the canonical provider (`Gemini:x` -> `google:x`); raise ValueError
    as `parse_model_ref` does."""
    return "{}:{}".format(*parse_model_ref(ref))


def model_key(ref: str) -> str:
    """`canonical_ref(ref)`, or `ref` stripped when it does not parse: a key for telling models apart."""
    try:
        return canonical_ref(ref)
    except ValueError:
        return ref.strip()


def is_host(ref: str) -> bool:
    """True when `ref` names the MCP host's model (`sampling:host`, in any case or spacing)."""
    return ref.strip().partition(":")[0].lower() == HOST


def is_image_model(provider: str, model: str) -> bool:
    """True for an OpenAI GPT Image model, which answers on the Images API (`models/openai_images.py`)."""
    return provider == "openai" and model.startswith(("gpt-image-", "chatgpt-image"))
