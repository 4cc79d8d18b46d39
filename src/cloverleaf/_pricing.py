"""Cost of a call from per-model token prices.

Prices come from the built-in table (``data/prices.json``, USD per million tokens) or a
registry entry (``[[models]]`` ``input_cost_per_1k``/``output_cost_per_1k``, and its cache rates:
``cached_input_cost_per_1k``, ``cache_write_cost_per_1k``, ``cache_write_1h_cost_per_1k``), which
wins; an entry's cache rates it does not give follow the table row's (see :meth:`ModelPrice.per_1k`).
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
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from ._types import Usage

#: Processing tiers billed at rates of their own (OpenAI's and Google's flex and priority).
_DISTINCT_TIERS = frozenset({"flex", "priority"})


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per 1M tokens. ``cache_write`` is the five-minute prompt-cache write rate,
    ``cache_write_1h`` the one-hour one (Anthropic: 1.25x and 2x input). ``audio_input`` is what
    an audio input token bills at where the provider prices audio apart (Gemini: $1.00 against
    $0.30 for text on 2.5 Flash); None: the input rate. ``cached_audio_input`` is what a cached
    one bills at (Gemini 2.5 Flash: $0.10 against $0.03 for cached text); None: the cached rate
    where audio has no rate of its own (one rate for every modality, as on Gemini 2.5 Pro), else
    the audio input rate: a provider that prices audio apart and lists no cached audio rate
    promises no discount on it, and billing it as cached text would count it below any price the
    provider lists.

    ``long_context`` holds the rates a prompt of more than ``long_context_above`` input tokens
    (cached and cache-written ones included) bills at, for every token of the call: Gemini 2.5
    Pro above 200k, Claude Sonnet 4/4.5 with the 1M-context beta above 200k. Its
    ``context_window`` is the window that tier serves (1M for the Claude beta).

    ``web_search`` is USD per 1,000 server-side web searches (Anthropic: $10), billed on top of
    the tokens for each search ``Usage.web_search_requests`` counts. ``tiers`` are the rates of
    the processing tiers a call can be served at, by the name the upstream answers with
    (OpenAI's ``flex``, half the standard rates, and ``priority``): a call served at one
    (``Usage.service_tier``) bills at its rates; ``flex`` or ``priority`` where this row lists no
    rates for it is unpriced (cost None: a priority call billed at the standard rates undercounts
    it by up to half, and Google's priority premium varies by model); any other tier name
    (``default``, ``auto``, ``scale``) at this row's.

    ``audio_output`` is what an audio output token bills at (OpenAI's audio models: $80 against
    $10 for text on gpt-4o-audio-preview). A call that answered in audio
    (``Usage.audio_output_tokens``) at rates that list none is unpriced (cost None, never the text
    rate: that would count it at an eighth of the bill). ``image_output`` is what an image output
    token bills at (Gemini's image models: $120 against $12 for text and thinking on Gemini 3 Pro
    Image), for the answer's images (``Usage.image_output_tokens``), the same way."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    context_window: int | None = None
    uses: tuple[str, ...] = ()
    cache_write_1h: float | None = None
    audio_input: float | None = None
    long_context_above: int | None = None
    long_context: ModelPrice | None = None
    web_search: float | None = None
    tiers: tuple[tuple[str, ModelPrice], ...] = ()
    cached_audio_input: float | None = None
    audio_output: float | None = None
    image_output: float | None = None

    def unpriced_tier(self, name: str | None) -> bool:
        """Was the call served at a tier (flex, priority) that bills apart, at which this row lists no rates?"""
        return name in _DISTINCT_TIERS and all(tier_name != name for tier_name, _ in self.tiers)

    def tier(self, name: str | None) -> ModelPrice:
        """The rates of processing tier ``name``: its own where this row lists them, else this row's."""
        if name is not None:
            for tier_name, price in self.tiers:
                if tier_name == name:
                    return price
        return self

    def search_fees(self, searches: int) -> float:
        """USD for ``searches`` server-side web searches."""
        return searches * (self.web_search or 0.0) / 1000

    def scaled(self, factor: float) -> ModelPrice:
        """Every rate (and its long-context tier's) times ``factor``: an endpoint's premium."""
        def times(rate: float | None) -> float | None:
            return None if rate is None else round(rate * factor, 6)

        return replace(
            self, input=round(self.input * factor, 6), output=round(self.output * factor, 6),
            cached_input=times(self.cached_input), cache_write=times(self.cache_write),
            cache_write_1h=times(self.cache_write_1h), audio_input=times(self.audio_input),
            cached_audio_input=times(self.cached_audio_input), audio_output=times(self.audio_output),
            image_output=times(self.image_output),
            long_context=self.long_context.scaled(factor) if self.long_context is not None else None,
            tiers=tuple((name, tier.scaled(factor)) for name, tier in self.tiers))

    def rates_for(self, input_tokens: int) -> ModelPrice:
        """The rates a call whose prompt is ``input_tokens`` long bills at."""
        if self.long_context is not None and self.long_context_above is not None \
                and input_tokens > self.long_context_above:
            return self.long_context
        return self

    def cost(self, usage: Usage, standard_tiers: frozenset[str] = frozenset()) -> float | None:
        """What ``usage`` costs; None when the upstream reported no usage (unless nothing here
        bills at all: a free local model costs 0.0 however much it was used). ``standard_tiers``:
        the tiers the provider bills at its standard rates (``ProviderSpec.standard_rate_tiers``,
        Groq's flex), priced as standard, not left unpriced as OpenAI's unlisted ones are."""
        if not usage.reported:
            return 0.0 if self.dearest_input == 0.0 and not self.output else None
        tier = None if usage.service_tier in standard_tiers else usage.service_tier
        if self.unpriced_tier(tier):
            return None
        rates = (self if tier is None else self.tier(tier)).rates_for(usage.input_tokens)
        if usage.audio_output_tokens and rates.audio_output is None:
            return None   # an audio answer at rates with no audio price: unpriced, not billed as text
        if usage.image_output_tokens and rates.image_output is None:
            return None   # an image answer likewise
        tokens = rates._tier_cost(usage)
        if usage.web_search_requests:   # most calls search nothing: no call for them
            tokens += self.search_fees(usage.web_search_requests)
        return round(tokens, 10)

    def _tier_cost(self, usage: Usage) -> float:
        """Every input token once, at its one rate: fresh text, fresh audio, cached text, cached
        audio, cache writes. The cached and audio counts overlap (both APIs count cached tokens
        in the prompt, and audio in the prompt whether cached or not), so they are split here."""
        cached = min(usage.cached_tokens, usage.input_tokens)
        written = min(usage.cache_write_tokens, usage.input_tokens - cached)
        written_1h = min(usage.cache_write_1h_tokens, written)
        fresh = usage.input_tokens - cached - written
        cached_audio, audio = self._audio_split(usage, cached, fresh)
        cached_rate = self.cached_input if self.cached_input is not None else self.input
        write_rate = self.cache_write if self.cache_write is not None else self.input
        write_1h_rate = self.cache_write_1h if self.cache_write_1h is not None else write_rate
        # output_tokens already include reasoning tokens (every provider bills them as output),
        # and audio and image output tokens, billed at their own rates (cost() leaves none to a row without them)
        audio_out = min(usage.audio_output_tokens, usage.output_tokens)
        image_out = min(usage.image_output_tokens, usage.output_tokens - audio_out)
        total = ((fresh - audio) * self.input + audio * (self.audio_input or 0.0)
                 + (cached - cached_audio) * cached_rate + cached_audio * self._cached_audio_rate(cached_rate)
                 + (written - written_1h) * write_rate + written_1h * write_1h_rate
                 + (usage.output_tokens - audio_out - image_out) * self.output
                 + audio_out * (self.audio_output or 0.0) + image_out * (self.image_output or 0.0))
        return round(total / 1_000_000, 10)

    def _audio_split(self, usage: Usage, cached: int, fresh: int) -> tuple[int, int]:
        """(cached audio, fresh audio) tokens, where this row prices audio apart ((0, 0) else).
        The cached audio is what the upstream says (Gemini's ``cacheTokensDetails``), and at least
        the audio the fresh tokens cannot hold; where it does not say (OpenAI-style usage gives the
        two totals only), the rest of the audio is taken to be fresh, the dearer reading."""
        if self.audio_input is None or not usage.audio_input_tokens and not usage.cached_audio_tokens:
            return 0, 0
        cached_audio = min(cached, max(usage.cached_audio_tokens, usage.audio_input_tokens - fresh))
        return cached_audio, min(max(usage.audio_input_tokens - cached_audio, 0), fresh)

    def _cached_audio_rate(self, cached_rate: float) -> float:
        """What a cached audio token bills at (see the class docstring for a row that lists none)."""
        if self.cached_audio_input is not None:
            return self.cached_audio_input
        return self.audio_input if self.audio_input is not None else cached_rate

    @property
    def dearest_input(self) -> float:
        """The highest rate an input token can bill at (a one-hour cache write, on Anthropic;
        audio, on Gemini) at these rates: what a budget's bound must assume, since it cannot know
        how a prompt will be cached or what its attachments hold (a long prompt's tier: see
        :meth:`bound_rates`)."""
        return max(self.input, self.cached_input or 0.0, self.cache_write or 0.0, self.cache_write_1h or 0.0,
                   self.audio_input or 0.0, self.cached_audio_input or 0.0)

    def bound_rates(self, input_tokens: int) -> tuple[float, float]:
        """(dearest input rate, dearest output rate) for a call whose prompt is at most
        ``input_tokens`` long: the long-context tier's as soon as such a prompt could reach it. Any
        output token may be audio or an image, so the output rate is the dearest of the three."""
        tier = self.rates_for(input_tokens)
        return tier.dearest_input, max(tier.output, tier.audio_output or 0.0, tier.image_output or 0.0)

    @property
    def widest_window(self) -> int | None:
        """The most input tokens any call can be billed for: the long-context tier's window
        when it has a wider one (the 1M-context beta), else this row's."""
        tier_window = self.long_context.context_window if self.long_context is not None else None
        if self.context_window is None or tier_window is None:
            return self.context_window
        return max(self.context_window, tier_window)

    @classmethod
    def per_1k(cls, input_cost: float, output_cost: float, cached_input: float | None = None,
               context_window: int | None = None, cache_write: float | None = None, *,
               cache_write_1h: float | None = None, like: ModelPrice | None = None) -> ModelPrice:
        """A price from per-1K rates (a registry entry's). A cache rate not given is ``like``'s
        (the built-in row of the same model) scaled to this input rate: a negotiated price keeps
        the provider's cache discount and write premium, where billing cache reads at the full
        input rate would overstate them and having no write rate understate Anthropic's writes.
        With no such row, a one-hour write rate not given is the five-minute one (see :meth:`cost`).
        ``like``'s audio rate and long-context tier are kept the same way, in proportion (input
        rates to this input rate, the output rates (audio, image) to this output rate), and its cached
        audio rate."""
        rate = input_cost * 1000
        out = output_cost * 1000

        def output_kind(row_rate: float | None) -> float | None:
            """``like``'s audio or image output rate, in proportion to this output rate."""
            if like is None or row_rate is None or not like.output:
                return None
            return round(out * row_rate / like.output, 10)

        def scaled(given: float | None, row_rate: float | None) -> float | None:
            if given is not None:
                return given * 1000
            if like is None or row_rate is None or not like.input:
                return None
            return round(rate * row_rate / like.input, 10)

        base = cls(rate, out,
                   scaled(cached_input, like.cached_input if like else None),
                   scaled(cache_write, like.cache_write if like else None),
                   context_window if context_window is not None else (like.context_window if like else None),
                   (), scaled(cache_write_1h, like.cache_write_1h if like else None),
                   scaled(None, like.audio_input if like else None),
                   cached_audio_input=scaled(None, like.cached_audio_input if like else None),
                   audio_output=output_kind(like.audio_output if like else None),
                   image_output=output_kind(like.image_output if like else None))
        if like is None or not like.input:
            return base
        # the row's per-search fee is the provider's, whatever the token rates; its tiers move
        # with this entry's rates as its long-context tier does
        base = replace(base, web_search=like.web_search,
                       tiers=tuple((name, _in_proportion(tier, like, base)) for name, tier in like.tiers))
        if like.long_context is None:
            return base
        return replace(base, long_context_above=like.long_context_above,
                       long_context=_in_proportion(like.long_context, like, base))


def _in_proportion(tier: ModelPrice, row: ModelPrice, mine: ModelPrice) -> ModelPrice:
    """``row``'s long-context ``tier`` moved to ``mine``'s rates: each of its rates times what
    ``mine`` charges for the same kind of token over what ``row`` does (input's ratio where
    ``row`` has no such rate)."""
    ratio = mine.input / row.input if row.input else 1.0

    def moved(tier_rate: float | None, row_rate: float | None, my_rate: float | None) -> float | None:
        if tier_rate is None:
            return None
        factor = my_rate / row_rate if row_rate and my_rate is not None else ratio
        return round(tier_rate * factor, 10)

    output = moved(tier.output, row.output, mine.output)
    return ModelPrice(round(tier.input * ratio, 10), output if output is not None else tier.output,
                      moved(tier.cached_input, row.cached_input, mine.cached_input),
                      moved(tier.cache_write, row.cache_write, mine.cache_write), tier.context_window, (),
                      moved(tier.cache_write_1h, row.cache_write_1h, mine.cache_write_1h),
                      moved(tier.audio_input, row.audio_input, mine.audio_input),
                      cached_audio_input=moved(tier.cached_audio_input, row.cached_audio_input,
                                               mine.cached_audio_input),
                      audio_output=moved(tier.audio_output, row.output, mine.output),
                      image_output=moved(tier.image_output, row.output, mine.output))


def _row(row: dict[str, Any]) -> ModelPrice:
    """A price-table row (or a row's ``long_context`` tier, whose ``above`` is its threshold)."""
    tier = row.get("long_context")
    tiers = tuple((name, _row({"context": row.get("context"), **rates})) for name, rates in row.get("tiers", {}).items())
    return ModelPrice(row["input"], row["output"], row.get("cached_input"), row.get("cache_write"),
                      row.get("context"), tuple(row.get("uses", ())), row.get("cache_write_1h"),
                      row.get("audio_input"), tier["above"] if tier else None, _row(tier) if tier else None,
                      row.get("web_search"), tiers, row.get("cached_audio_input"), row.get("audio_output"),
                      row.get("image_output"))


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, ModelPrice], dict[str, dict[str, str]]]:
    raw: dict[str, Any] = json.loads(resources.files("cloverleaf.data").joinpath("prices.json").read_text("utf-8"))
    prices = {key: _row(row) for key, row in raw["models"].items()}
    for alias, key in raw.get("model_aliases", {}).items():   # a vendor's own other name for a row
        if not alias.startswith("_"):
            prices[alias] = prices[key]
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


#: Dated-snapshot suffixes every vendor's ids may carry: -YYYY-MM-DD, -YYYYMMDD, Gemini's
#: preview -MM-DD and -MM-YYYY (``gemini-2.5-flash-preview-09-2025``), -latest, -exp.
_DATE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-(0[1-9]|1[0-2])-20\d{2}|-latest|-preview(-\d{2}-\d{2})?|-exp)$")
#: Four-digit snapshot suffixes, only for the vendors whose ids use them: xAI's -MMDD
#: (``grok-4-0709``), Mistral's -YYMM (``mistral-large-2411``). Not for everyone: OpenAI's
#: ``gpt-3.5-turbo-1106`` has one too, and it was billed unlike ``gpt-3.5-turbo``.
_SHORT_SUFFIX = {
    "xai": re.compile(r"-(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"),
    "mistral": re.compile(r"-2\d(0[1-9]|1[0-2])$"),
}


def _candidates(key: str) -> list[str]:
    """``key`` and its forms without dated-snapshot suffixes (``gpt-4o-2024-08-06`` → ``gpt-4o``)."""
    out = [key]
    provider, _, model = key.partition("/")
    short = _SHORT_SUFFIX.get(provider)
    prev = None
    while model != prev:
        prev = model
        model = _DATE_SUFFIX.sub("", model)
        if short is not None:
            model = short.sub("", model)
        out.append(f"{provider}/{model}")
    return out


def table_keys(keys: list[str]) -> Iterator[str]:
    """Every table key ``keys`` (``provider/model``, most specific first) may be listed under, in
    the order to try them: through the table's reseller aliases, dated-snapshot suffixes and
    dotted version spellings (``claude-3.5-sonnet`` as ``claude-3-5-sonnet``). The image price
    table (:mod:`._image_pricing`) is searched the same way."""
    aliases = _table()[1]
    expanded: list[str] = []
    for key in keys:
        expanded.append(key)
        provider, _, model = key.partition("/")
        for prefix, target in aliases.get(provider, {}).items():
            if model.startswith(prefix):
                expanded.append(target + model[len(prefix):])
    expanded += [k.replace(".", "-") for k in expanded if "." in k.partition("/")[2]]
    for key in expanded:
        yield from _candidates(key)


def lookup_keys(keys: list[str]) -> ModelPrice | None:
    """The built-in price for the first of ``keys`` that the table lists (see :func:`table_keys`).
    None when unknown."""
    prices = _table()[0]
    return next((prices[key] for key in table_keys(keys) if key in prices), None)


def lookup(provider: str, model: str) -> ModelPrice | None:
    """The built-in price for ``provider``/``model``, or None when unknown. The provider's adapter
    says which table keys its ids map to (``Adapter.price_keys``: Bedrock version suffixes, Ollama tags)."""
    from .providers.registry import get_adapter, get_spec, provider_names

    if provider in provider_names():
        return lookup_keys(get_adapter(get_spec(provider)).price_keys(model))
    return lookup_keys([f"{provider}/{model}"])
