"""Cost of a call from the `genai-prices` catalog. Never fetches; never fails a call."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import structlog

from cadre_core.models.base import Usage
from cadre_core.models.refs import CLI_PROVIDERS

log = structlog.get_logger("cadre.pricing")
_PROVIDER_IDS = {"anthropic": "anthropic", "openai": "openai", "google": "google"}
_warned: set[str] = set()


@cache
def price_version() -> str:
    from importlib.metadata import version

    return f"genai-prices {version('genai-prices')}"


def _lookup_args(provider: str, model: str) -> tuple[str, str | None] | None:
    """Catalog name and provider id, or None when the catalog cannot know the model.

    An `openai_compatible` model is priced only in OpenRouter's `vendor/model` form; a bare
    name (`llama3:8b` on Ollama) is local and must not be billed at a cloud model's price.
    """
    name = model.removeprefix("models/")
    if provider == "openai_compatible":
        if "/" not in name:
            return None
        name = name.split("/", 1)[1]
    return name, _PROVIDER_IDS.get(provider)


def price(usage: Usage, provider: str, model: str, *, at: datetime | None = None) -> tuple[float | None, str | None]:
    """USD cost and the price-data version; (None, None) with a warning when unknown."""
    if provider in ("sampling", "test", "function", *CLI_PROVIDERS):
        return None, None
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    args = _lookup_args(provider, model)
    if args is None:
        return None, None
    name, provider_id = args
    try:
        calc = calc_price(
            PriceUsage(
                input_tokens=usage.input_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                output_tokens=usage.output_tokens,
            ),
            name,
            provider_id=provider_id,
            genai_request_timestamp=at,
        )
    except (LookupError, ValueError) as exc:
        key = f"{provider}:{model}"
        if key not in _warned:
            _warned.add(key)
            log.warning("no price for model; cost recorded as null", model=key, error=str(exc))
        return None, None
    return float(calc.total_price), price_version()


def _catalog_entry(provider: str, model: str) -> Any:
    """The catalog's price calculation for a token of each kind (its model and price), or None."""
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    args = _lookup_args(provider, model)
    if args is None:
        return None
    name, provider_id = args
    try:
        return calc_price(PriceUsage(input_tokens=1, output_tokens=1), name, provider_id=provider_id)
    except (LookupError, ValueError):
        return None


@cache
def catalog_context_window(provider: str, model: str) -> int | None:
    """The catalog's input window for a model, when it has one."""
    calc = _catalog_entry(provider, model)
    return None if calc is None else calc.model.context_window


def has_price(provider: str, model: str) -> bool:
    cost, _ = price(Usage(input_tokens=1000, output_tokens=1000), provider, model)
    return cost is not None


def prices_image_output_apart(provider: str, model: str) -> bool:
    """True when the catalog prices the model's image output apart from its output tokens (`gpt-image-1.5`):
    `price` counts output tokens at the text rate, so such a model's cost would be undercounted."""
    calc = _catalog_entry(provider, model)
    return calc is not None and getattr(calc.model_price, "output_image_mtok", None) is not None
