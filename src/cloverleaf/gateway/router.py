"""Routes: which targets a model name means, and in what order to try them.

A configured route (``[routes.smart]`` or :meth:`Router.set_route`) names targets; any
other name — a registry entry or a plain ``provider/model`` id — is a one-target route.
A route's targets are resolved through the Engine once and kept until the Engine's model
registry changes (so admin-API edits apply at once); the hot path does a dict lookup. The
strategy only orders the targets; the attempt loop walks that order and falls back along it.

- ``priority``: as listed.
- ``weighted``: a weighted random order (the first target is picked in proportion to its
  weight; the rest follow as fallbacks, also by weight).
- ``latency``: lowest moving-average latency first; targets never measured go first, so
  they get measured.
- ``cost``: cheapest first for this request's estimated tokens; unknown prices last.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from .._errors import url_secrets
from .._pricing import ModelPrice
from .._secret_headers import header_secrets
from .config import RouteConfig, TargetSpec, make_route
from .protocols import EngineLike, Target
from .state import StateBackend


@dataclass(slots=True)
class ResolvedTarget:
    spec: TargetSpec
    target: Target              # the Engine's Target, handed back to it unchanged
    provider: str
    context_window: int | None
    price: ModelPrice | None
    secret: str | None = field(default=None, repr=False)   # its API key, to scrub from error text
    key: str = ""               # the spec's key: breakers, limits and records are per key
    #: its own ``timeout`` (``[providers.NAME] timeout``; None: the defaults'), which bounds one
    #: attempt's wait for a response head: the attempt loop cuts it to a call's deadline
    timeout: float | None = None

    def __post_init__(self) -> None:
        self.key = self.spec.key


@dataclass(frozen=True, slots=True)
class RouteInfo:
    name: str
    strategy: str
    targets: tuple[str, ...]
    implicit: bool = False


#: Cached one-target routes and resolutions are dropped wholesale beyond this many names; what
#: is worked out per name elsewhere (budget scopes, rate-limit plans, cost bounds) is kept no longer.
MAX_CACHED = 4096


class Router:
    def __init__(self, engine: EngineLike, routes: dict[str, RouteConfig], state: StateBackend,
                 rng: random.Random | None = None) -> None:
        self._engine = engine
        self._routes = dict(routes)
        self._implicit: dict[str, RouteConfig] = {}
        self._resolved: dict[str, tuple[int, RouteConfig, list[ResolvedTarget]]] = {}
        self._secrets: dict[int, tuple[list[ResolvedTarget], tuple[str, ...]]] = {}
        self._state = state
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    # -- configuration ----------------------------------------------------------------
    def set_route(self, route: RouteConfig) -> None:
        with self._lock:
            self._routes = {**self._routes, route.name: route}

    def configured(self, name: str) -> RouteConfig | None:
        """The route defined under ``name`` (configuration or code), if any."""
        return self._routes.get(name)

    def route(self, model: str) -> RouteConfig:
        found = self._routes.get(model) or self._implicit.get(model)
        if found is None:
            found = make_route(model, [model], implicit=True)
            if len(self._implicit) >= MAX_CACHED:
                self._implicit.clear()
            self._implicit[model] = found
        return found

    def infos(self) -> list[RouteInfo]:
        return [RouteInfo(r.name, r.strategy, tuple(t.key for t in r.targets)) for r in self._routes.values()]

    def invalidate(self) -> None:
        """Resolve every route again on its next call (the server calls this after registry edits)."""
        self._resolved = {}

    # -- resolution -------------------------------------------------------------------
    def targets(self, route: RouteConfig) -> list[ResolvedTarget]:
        """The route's targets resolved through the Engine (ConfigError on an unknown model).
        The list is shared between calls: never modify it."""
        version = getattr(getattr(self._engine, "registry", None), "version", 0)
        cached = self._resolved.get(route.name)
        if cached is not None and cached[0] == version and cached[1] is route:
            return cached[2]
        targets = [self._resolve(spec) for spec in route.targets]
        if len(self._resolved) >= MAX_CACHED:
            self._resolved = {}
        self._resolved[route.name] = (version, route, targets)
        return targets

    def secrets(self, targets: list[ResolvedTarget]) -> tuple[str, ...]:
        """The secrets of a resolved target list, to scrub from error text (call records, traces,
        spans): each target's API key, its base URL's credentials and its configured headers'
        secrets (a proxy's key in ``headers``). Computed once per list."""
        cached = self._secrets.get(id(targets))
        if cached is not None and cached[0] is targets:
            return cached[1]
        found: list[str] = []
        for t in targets:
            cfg = getattr(t.target, "cfg", None)   # a stub engine's target may have none
            found.extend(s for s in (t.secret, *url_secrets(getattr(cfg, "base_url", None)),
                                     *header_secrets(getattr(cfg, "headers", None))) if s)
        secrets = tuple(dict.fromkeys(found))
        if len(self._secrets) >= MAX_CACHED:
            self._secrets = {}
        self._secrets[id(targets)] = (targets, secrets)
        return secrets

    def _resolve(self, spec: TargetSpec) -> ResolvedTarget:
        # the gateway retries itself (each retry passes the breaker and the rate limits)
        target = self._engine.resolve(spec.model, api_key=spec.api_key, base_url=spec.base_url, max_retries=0)
        price = target.price
        provider = target.provider or spec.model.partition("/")[0]
        secret = target.api_key or spec.api_key
        return ResolvedTarget(spec, target, provider, target.context_window, price, secret,
                              timeout=getattr(getattr(target, "cfg", None), "timeout", None))

    # -- ordering ---------------------------------------------------------------------
    async def order(self, route: RouteConfig, targets: list[ResolvedTarget],
                    input_tokens: int, output_tokens: int) -> list[ResolvedTarget]:
        if len(targets) < 2 or route.strategy == "priority":
            return list(targets)
        if route.strategy == "weighted":
            return self._weighted(targets)
        if route.strategy == "latency":
            averages = await self._state.latencies([t.key for t in targets])
            return sorted(targets, key=lambda t: averages.get(t.key, 0.0))
        return sorted(targets, key=lambda t: _estimated_cost(t.price, input_tokens, output_tokens))

    def _weighted(self, targets: list[ResolvedTarget]) -> list[ResolvedTarget]:
        # Efraimidis–Spirakis: sorting by u ** (1 / w) is sampling without replacement by weight
        def draw(t: ResolvedTarget) -> float:
            return self._rng.random() ** (1.0 / t.spec.weight) if t.spec.weight > 0 else -1.0

        return sorted(targets, key=draw, reverse=True)


def _estimated_cost(price: ModelPrice | None, input_tokens: int, output_tokens: int) -> float:
    if price is None:
        return float("inf")
    rates = price.rates_for(input_tokens)   # a long prompt at its long-context tier's rates
    return input_tokens * rates.input + output_tokens * rates.output
