"""`provider:model` strings, parsed in one place."""

from __future__ import annotations

PROVIDERS: tuple[str, ...] = ("anthropic", "openai", "google", "openai_compatible", "sampling")
_ALIASES = {"gemini": "google", "google-gla": "google", "openai-compatible": "openai_compatible"}


def parse_model_ref(ref: str) -> tuple[str, str]:
    """Split `provider:model` into its parts; raise ValueError naming the fix."""
    provider, sep, model = ref.strip().partition(":")
    provider = _ALIASES.get(provider.lower(), provider.lower())
    if not sep or not model:
        if provider == "sampling":
            return "sampling", "host"
        raise ValueError(
            f"model '{ref}' must be written 'provider:model', e.g. 'openai:gpt-5.2'; "
            f"providers are {', '.join(PROVIDERS)}"
        )
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider '{provider}' in '{ref}'; use one of {', '.join(PROVIDERS)}")
    return provider, model
