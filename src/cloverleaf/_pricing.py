"""Cost of a call from per-model token prices.

Prices come from the built-in table (``data/prices.json``, USD per million tokens) or a
registry entry (``[[models]]`` ``input_cost_per_1k``/``output_cost_per_1k``), which wins.
An unknown price gives ``cost = None``, never 0: a made-up zero would hide spend. Local
providers (a row with ``local = True``) are the exception: they bill nothing, so they cost 0.0.

Matching is forgiving where providers are: dated snapshots (``gpt-4o-2024-08-06``,
``claude-3-5-sonnet-20241022``), ``-latest`` suffixes, and resellers that bill at the vendor's
list price (Bedrock's Anthropic models, Azure deployments of OpenAI models, OpenRouter, listed as
``aliases`` in the table) resolve to the vendor's row. What is particular to one vendor's ids
(Bedrock's ``-v2:0`` versions, Ollama's ``:8b`` tags) is the adapter's ``price_keys``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ._types import Usage


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    context_window: int | None = None
    uses: tuple[str, ...] = ()

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_tokens, usage.input_tokens)
        written = min(usage.cache_write_tokens, usage.input_tokens - cached)
        fresh = usage.input_tokens - cached - written
        cached_rate = self.cached_input if self.cached_input is not None else self.input
        write_rate = self.cache_write if self.cache_write is not None else self.input
        # output_tokens already include reasoning tokens (every provider bills them as output)
        total = fresh * self.input + cached * cached_rate + written * write_rate + usage.output_tokens * self.output
        return round(total / 1_000_000, 10)

    @classmethod
    def per_1k(cls, input_cost: float, output_cost: float, cached_input: float | None = None,
               context_window: int | None = None) -> ModelPrice:
        return cls(input_cost * 1000, output_cost * 1000,
                   cached_input * 1000 if cached_input is not None else None, None, context_window)


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, ModelPrice], dict[str, dict[str, str]]]:
    raw: dict[str, Any] = json.loads(resources.files("cloverleaf.data").joinpath("prices.json").read_text("utf-8"))
    prices = {
        key: ModelPrice(row["input"], row["output"], row.get("cached_input"), row.get("cache_write"),
                        row.get("context"), tuple(row.get("uses", ())))
        for key, row in raw["models"].items()
    }
    aliases = {k: v for k, v in raw.get("aliases", {}).items() if not k.startswith("_")}
    return prices, aliases


def all_prices() -> dict[str, ModelPrice]:
    return dict(_table()[0])


def reseller_prices(provider: str) -> dict[str, ModelPrice]:
    """The vendor models a reseller (OpenRouter) serves at their list price, under the reseller's
    ids (``openrouter/openai/gpt-4o-mini``): what ``cloverleaf models --provider openrouter`` lists.
    Only recommended models (with ``uses``); an empty prefix (Azure: deployment names are the
    user's) lists nothing."""
    prices, aliases = _table()
    out: dict[str, ModelPrice] = {}
    for prefix, target in aliases.get(provider, {}).items():
        if not prefix:
            continue
        for key, price in prices.items():
            if key.startswith(target) and price.uses:
                out[f"{provider}/{prefix}{key[len(target):]}"] = price
    return out


_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-latest|-preview(-\d{2}-\d{2})?|-exp)$")


def _candidates(key: str) -> list[str]:
    """``key`` and its forms without dated-snapshot suffixes (``gpt-4o-2024-08-06`` → ``gpt-4o``)."""
    out = [key]
    provider, _, model = key.partition("/")
    prev = None
    while model != prev:
        prev = model
        model = _DATE_SUFFIX.sub("", model)
        out.append(f"{provider}/{model}")
    return out


def lookup_keys(keys: list[str]) -> ModelPrice | None:
    """The built-in price for the first of ``keys`` (``provider/model``, most specific first) that the
    table lists, through the table's reseller aliases, dated-snapshot suffixes and dotted version
    spellings (``claude-3.5-sonnet`` as ``claude-3-5-sonnet``). None when unknown."""
    prices, aliases = _table()
    expanded: list[str] = []
    for key in keys:
        expanded.append(key)
        provider, _, model = key.partition("/")
        for prefix, target in aliases.get(provider, {}).items():
            if model.startswith(prefix):
                expanded.append(target + model[len(prefix):])
    expanded += [k.replace(".", "-") for k in expanded if "." in k.partition("/")[2]]
    for key in expanded:
        for candidate in _candidates(key):
            if candidate in prices:
                return prices[candidate]
    return None


def lookup(provider: str, model: str) -> ModelPrice | None:
    """The built-in price for ``provider``/``model``, or None when unknown. The provider's adapter
    says which table keys its ids map to (``Adapter.price_keys``: Bedrock version suffixes, Ollama tags)."""
    from .providers.registry import get_adapter, get_spec, provider_names

    if provider in provider_names():
        return lookup_keys(get_adapter(get_spec(provider)).price_keys(model))
    return lookup_keys([f"{provider}/{model}"])
