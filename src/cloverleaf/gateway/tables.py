"""Every configuration table a gateway reads, parsed in one step: what :class:`~.gateway.Gateway`
is built from, and what ``cloverleaf doctor`` checks, so that the doctor refuses exactly what
``cloverleaf serve`` refuses, with the same words (it used to check only the store and the
routes, and passed files the server would not start with)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .cache.config import CacheConfig, parse_cache
from .config import GatewayConfig, parse
from .telemetry import TelemetryConfig, parse_telemetry


@dataclass(frozen=True, slots=True)
class GatewayTables:
    config: GatewayConfig                  # routes, limits, breaker, budgets, store, state
    cache: CacheConfig                     # [cache]
    telemetry: TelemetryConfig | None      # [telemetry] (None: no spans)


def read_tables(settings: Any, env: Mapping[str, str], *, from_env: bool) -> GatewayTables:
    """``from_env``: the standard OTLP variables alone turn spans on (the server's gateway)."""
    return GatewayTables(config=parse(settings), cache=parse_cache(getattr(settings, "cache", None)),
                         telemetry=parse_telemetry(getattr(settings, "telemetry", None), env, from_env=from_env))
