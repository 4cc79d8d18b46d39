"""Fallback chains built one target at a time, the way AgentLoom's gateway is set up:

    gateway.register("openai/gpt-4o", priority=0)
    gateway.register("anthropic/claude-sonnet-4-5", priority=1, is_fallback=True)

Each call is equivalent to editing ``[routes.NAME] targets``: a registration becomes a target of
the route ``NAME`` (``default`` unless named), ordered primaries first, then fallbacks, each
group by ascending ``priority`` and then by registration order. A route already defined in
``cloverleaf.toml`` is extended: its targets keep their order, as primaries ahead of anything
registered with the same priority. Registering a target again moves it.
"""

from __future__ import annotations

import dataclasses
import threading

from .config import RouteConfig, TargetSpec, make_route


@dataclasses.dataclass(frozen=True, slots=True)
class Registration:
    spec: TargetSpec
    priority: int
    is_fallback: bool
    seq: int

    @property
    def order(self) -> tuple[bool, int, int]:
        return (self.is_fallback, self.priority, self.seq)


class FallbackChains:
    """Registrations per route, turned into the route the router serves."""

    def __init__(self) -> None:
        self._chains: dict[str, dict[str, Registration]] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def register(self, base: RouteConfig | None, route: str, spec: TargetSpec, *, priority: int,
                 is_fallback: bool) -> RouteConfig:
        """The route ``route`` with ``spec`` added (or moved) by priority; ``base`` is its current form."""
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int, got {priority!r}")
        with self._lock:
            chain = self._chains.get(route)
            if chain is None:  # first registration: the configured targets come first, in order
                chain = {}
                configured = base.targets if base is not None and not base.implicit else ()
                for i, existing in enumerate(configured):  # negative: ahead of every registration
                    chain[existing.key] = Registration(existing, 0, False, i - len(configured))
                self._chains[route] = chain
            chain[spec.key] = Registration(spec, priority, is_fallback, self._next())
            ordered = [r.spec for r in sorted(chain.values(), key=lambda r: r.order)]
        if base is not None and not base.implicit:
            return dataclasses.replace(base, targets=tuple(ordered))
        return make_route(route, ordered)

    def _next(self) -> int:
        self._seq += 1
        return self._seq
