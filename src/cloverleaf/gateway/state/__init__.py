"""Shared gateway state: breakers, rate-limit buckets and budget counters, in memory or in Redis.

The contract (``Bucket``, ``Grant``, ``Hold``, ``Admission``, ``AttemptAsk``, ``StateBackend``) is
:mod:`.base`; the backends are :mod:`.memory` and :mod:`.redis`; :func:`open_state` picks one by URL. The backends import the
contract from ``.base``, never from this package, so the package imports them one way.
"""

from __future__ import annotations

import asyncio

from .base import (
    Admission,
    AnyBucket,
    AttemptAdmission,
    AttemptAsk,
    Bucket,
    Grant,
    Hold,
    Lanes,
    StateBackend,
    flatten,
    new_bucket,
    new_hold,
    new_lanes,
)

__all__ = ["Admission", "AnyBucket", "AttemptAdmission", "AttemptAsk", "Bucket", "Grant", "Hold", "Lanes", "StateBackend",
           "flatten", "new_bucket", "new_hold", "new_lanes", "open_state"]


def open_state(url: str | None, *, prefix: str | None = None) -> StateBackend:
    """The backend named by ``[state] url``: ``memory`` (default, per process) or
    ``redis://`` / ``rediss://``, or ``redis+cluster://`` / ``rediss+cluster://`` for a Redis Cluster
    (shared; ``prefix`` namespaces its keys, default ``cloverleaf:``)."""
    from ..._errors import ConfigError

    if url in (None, "", "memory"):
        from .memory import MemoryState

        return MemoryState()
    from ..redis_cluster import REDIS_PREFIXES

    if url.startswith(REDIS_PREFIXES):
        from .redis import open_redis_state

        return open_redis_state(url, prefix)
    scheme = url.partition("://")[0] if "://" in url else url
    raise ConfigError(f"[state] url with scheme {scheme!r} is not supported; use 'memory', 'redis://host:6379/0' "
                      "or 'redis+cluster://host:6379'")


#: how long a start-up or ``cloverleaf doctor`` check waits for the shared state to answer
PING_TIMEOUT_SECONDS = 5.0


async def unreachable(state: StateBackend, timeout: float = PING_TIMEOUT_SECONDS) -> str | None:
    """Why a shared backend cannot be reached, or None (it answered, or it is this process's
    memory). Asked at start by the server and by ``cloverleaf doctor``: with Redis down every
    gateway call is refused (503 ``state_unavailable``), and nothing said so until the first."""
    from ..._errors import StateUnavailable

    if not state.shared:
        return None
    try:
        await asyncio.wait_for(state.ping(), timeout)
    except StateUnavailable as exc:
        return str(exc)
    except TimeoutError:
        return (f"the shared state backend at {state.location} did not answer within {timeout:g} s; check that "
                "Redis is running and [state] url is right")
    return None


__all__ = ["Bucket", "Grant", "StateBackend", "open_state", "unreachable", "BreakerSnapshot", "BreakerDecision",
           "BreakerPolicy"]
