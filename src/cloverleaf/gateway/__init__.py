"""cloverleaf.gateway: routing, fallback, circuit breakers, rate limits, budgets, traces, store.

Imported lazily by the Client (only when settings ask for it) and by the server; importing
``cloverleaf`` never imports this package or SQLAlchemy.
"""

from __future__ import annotations

from .breaker import BreakerPolicy, BreakerSnapshot
from .clock import Clock, ManualClock, SystemClock
from .config import RouteConfig, TargetSpec
from .gateway import Gateway
from .router import RouteInfo
from .state import StateBackend
from .traces import Trace, TraceAPI

__all__ = ["Gateway", "Clock", "ManualClock", "SystemClock", "StateBackend", "BreakerPolicy", "BreakerSnapshot",
           "RouteConfig", "TargetSpec", "RouteInfo", "Trace", "TraceAPI"]
