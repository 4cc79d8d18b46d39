"""One gateway call's state, from its admission to its record.

The gateway (``gateway.py``) admits a call and walks its attempts; what settles it
(``settlement.py``) and what answers it from the response cache (``cached_calls.py``) read and
write the same state, so it lives here, on its own, rather than inside either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .attempts import AttemptLoop
from .budget import CallAdmission
from .cache import CachePlan
from .config import RouteConfig
from .trace_context import CallSpan, ForwardedTrace
from .traces import CallTracker


@dataclass(slots=True)
class Call:
    """Everything one call holds between admission and its record."""

    tracker: CallTracker
    loop: AttemptLoop
    reserved_usd: float = 0.0
    #: the call-level rate-limit buckets and budget reservations, under one ticket
    admission: CallAdmission | None = None
    emitted: bool = False          # a stream has sent output to the caller
    finished: bool = False         # the call record has been written
    ttft_ms: float | None = None
    route: RouteConfig | None = None
    cache_plan: CachePlan | None = None
    request: Any = None            # for OpenTelemetry (parameters, and content when captured)
    response: Any = None
    #: where the call stands in a W3C trace: its span (``trace_context.CallSpan``, telemetry on),
    #: or the client's trace headers passed on (``ForwardedTrace``), or None: nothing to send upstream
    trace: CallSpan | ForwardedTrace | None = None
    local_only: bool = False       # the privacy policy in force is local-only (privacy.py)
    withhold_content: bool = False  # local-only, and the telemetry collector is not local (or behind a proxy)

    @property
    def billable(self) -> bool:
        """Might the provider bill this call although it did not complete? (Output reached
        the caller, or an attempt was cut off in flight.)"""
        return self.emitted or self.loop.cut_off
