"""Cost of a call from per-model token prices.

Prices come from the built-in table (``data/prices.json``, USD per million tokens) or a
registry entry (``[[models]]`` ``input_cost_per_1k``/``output_cost_per_1k``), which wins.
An unknown price gives ``cost = None``, never 0: a made-up zero would hide spend.

Matching is forgiving where providers are: dated snapshots (``gpt-4o-2024-08-06``,
``claude-3-5-sonnet-20241022``), ``-latest`` suffixes, Bedrock version suffixes
(``-v2:0``) and resellers that bill at the vendor's list price (Bedrock's Anthropic
models, Azure deployments of OpenAI models, OpenRouter) resolve to the vendor's row.
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


_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-latest|-preview(-\d{2}-\d{2})?|-exp)$")
_BEDROCK_VERSION = re.compile(r"(-v\d+)?(:\d+)?$")


def _candidates(key: str) -> list[str]:
    out = [key]
    provider, _, model = key.partition("/")
    stripped = _BEDROCK_VERSION.sub("", model) if provider in ("bedrock", "anthropic") else model
    prev = None
    while stripped != prev:
        prev = stripped
        stripped = _DATE_SUFFIX.sub("", stripped)
        out.append(f"{provider}/{stripped}")
    # claude-3-5-sonnet-20241022-v2:0 style: strip version then date
    if ":" in model or re.search(r"-v\d+$", model):
        out.append(f"{provider}/{_DATE_SUFFIX.sub('', _BEDROCK_VERSION.sub('', model))}")
    # "llama3.1:8b" → "llama3.1" (Ollama tags)
    if provider == "ollama" and ":" in model:
        out.append(f"ollama/{model.split(':', 1)[0]}")
    return out


def lookup(provider: str, model: str) -> ModelPrice | None:
    """The built-in price for ``provider``/``model``, or None when unknown."""
    prices, aliases = _table()
    keys = [f"{provider}/{model}"]
    for prefix, target in aliases.get(provider, {}).items():
        if model.startswith(prefix):
            keys.append(target + model[len(prefix):])
    if provider == "anthropic" or model.startswith("anthropic/"):
        keys += [k.replace(".", "-") for k in keys]  # OpenRouter spells versions "claude-3.5-sonnet"
    for key in keys:
        for candidate in _candidates(key):
            if candidate in prices:
                return prices[candidate]
    if provider == "fake":  # every fake model bills at the nominal fake/echo rate
        return prices.get("fake/echo")
    return None
