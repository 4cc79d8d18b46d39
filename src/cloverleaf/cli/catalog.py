"""``cloverleaf models`` and ``cloverleaf providers``: what exists and what it can do."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from .common import load_settings, table, usage_error

USES = (("code", "code"), ("chat", "chat"), ("analysis", "analysis"), ("local", "local/private"),
        ("budget", "budget"), ("embeddings", "embeddings"))


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "models":
        p.add_argument("--provider", help="only this provider's models")
        p.add_argument("--use", choices=[u for u, _ in USES],
                       help="only models recommended for this use; 'local' lists only models a local-only "
                            "call may reach (local providers and is_public = false entries on a local address)")
    else:
        p.add_argument("--markdown", action="store_true", help="print the matrix as a Markdown table")


def _per_m(per_1k: float | None) -> float | None:
    return None if per_1k is None else per_1k * 1000


def _price(v: float | None) -> str:
    return "" if v is None or v != v else f"${v:g}"  # NaN: no listed price


def run(name: str, args: argparse.Namespace) -> int:
    if name == "providers":
        return _providers(args)
    from .._pricing import ModelPrice, all_prices, lookup, reseller_prices
    from ..providers.registry import ROWS

    settings = load_settings(args)
    prices: dict[str, ModelPrice] = all_prices()
    local = _local_filter(settings) if args.use == "local" else None
    if args.provider:
        _check_provider(args.provider, settings, prices)
        prices.update(reseller_prices(args.provider))
    for row in ROWS:  # each provider's default embedding model (`embed -m PROVIDER`) is listed
        if not row.embedding_model or (args.provider or row.name) != row.name or row.kind == "fake":
            continue  # the fake answers to any model name: none of them is a model to recommend
        key = f"{row.name}/{row.embedding_model}"
        price = prices.get(key) or lookup(row.name, row.embedding_model)
        if price is None:  # listed without a price (NaN prints empty): the model still exists
            price = ModelPrice(0.0 if row.local else float("nan"), 0.0)
        if "embeddings" not in price.uses:
            price = replace(price, uses=(*price.uses, "embeddings"))
        prices[key] = price
    rows = []
    for key, p in sorted(prices.items()):
        provider = key.split("/", 1)[0]
        if args.provider and provider != args.provider:
            continue
        if local is not None:
            if not local(key):
                continue
        elif args.use and args.use not in p.uses:
            continue
        rows.append((key, f"{p.context_window:,}" if p.context_window else "", _price(p.input), _price(p.output),
                     _price(p.cached_input), ", ".join(p.uses)))
    for e in settings.models:
        if args.provider and e.provider != args.provider:
            continue
        if local is not None and not local(e.name):
            continue
        rows.append((f"{e.name} ({e.provider}/{e.identifier})", f"{e.context_window:,}" if e.context_window else "",
                     _price(_per_m(e.input_cost_per_1k)), _price(_per_m(e.output_cost_per_1k)), "", "registry"))
    table(("model", "context", "$/M in", "$/M out", "$/M cached", "recommended for"), rows)
    if not args.use and not args.provider:
        print("\nRecommendations by use:")
        for use, label in USES:
            names = [k for k, p in sorted(prices.items(), key=lambda kv: kv[1].input) if use in p.uses][:4]
            print(f"  {label:<14} {', '.join(names)}")
    return 0


def _check_provider(name: str, settings: Any, prices: dict[str, Any]) -> None:
    """``--provider`` names a provider: a typo listed an empty table and exited 0, as if the
    provider had no models."""
    from ..providers.registry import PROVIDER_ALIASES, provider_names

    known = {*provider_names(), *PROVIDER_ALIASES, *settings.providers, *(e.provider for e in settings.models),
             *(key.split("/", 1)[0] for key in prices)}
    if name not in known:
        usage_error(f"unknown provider {name!r}; known providers: {', '.join(sorted(known))}")


def _local_filter(settings: Any) -> Any:
    """``--use local``: a model is listed only if a ``local-only`` call to it would pass
    (declared local and its endpoint resolving to this machine or your network)."""
    from .._engine import Engine
    from .._errors import ConfigError

    engine = Engine(settings)

    def passes(model: str) -> bool:
        try:
            return bool(engine.privacy.locality(engine.resolve(model)).local)
        except ConfigError:
            return False

    return passes


def _providers(args: argparse.Namespace) -> int:
    from .._matrix import COLUMNS, markdown, rows
    from ..providers.registry import ROWS

    if args.markdown:
        print(markdown(), end="")
        return 0
    desc = {r.name: r.description for r in ROWS}
    table(("provider", *[label for _, label in COLUMNS]),
          [(name, *["yes" if f else "-" for f in flags]) for name, flags in rows()])
    print()
    for name, _ in rows():
        print(f"  {name:<17} {desc.get(name, '')}")
    return 0
