"""cloverleaf.gateway: routing, fallback, circuit breakers, rate limits, budgets, traces, store.

Imported lazily by the Client (only when settings ask for it) and by the server; importing
``cloverleaf`` never imports this package or SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

from .breaker import BreakerPolicy, BreakerSnapshot
from .clock import Clock, ManualClock, SystemClock
from .config import RouteConfig, TargetSpec
from .gateway import Gateway
from .router import RouteInfo
from .state import StateBackend
from .traces import Trace, TraceAPI


def check_settings(settings: Any) -> None:
    """Read every gateway table (``[routes]``, ``[limits]``, ``[breaker]``, ``[budgets]``,
    ``[store]``, ``[state]``, ``[cache]``, ``[telemetry]``) and raise the first ConfigError,
    opening nothing: the Client calls this when it is built, so a typo is reported at load time
    rather than at the first call."""
    import os

    from .cache.config import parse_cache
    from .config import parse
    from .telemetry import parse_telemetry

    parse(settings)
    parse_cache(getattr(settings, "cache", None))
    parse_telemetry(getattr(settings, "telemetry", None), getattr(settings, "env", None) or os.environ,
                    from_env=False)


__all__ = ["check_settings", "Gateway", "Clock", "ManualClock", "SystemClock", "StateBackend", "BreakerPolicy", "BreakerSnapshot",
           "RouteConfig", "TargetSpec", "RouteInfo", "Trace", "TraceAPI"]
