"""Shared gateway state: breakers, rate-limit buckets and budget counters, in memory or in Redis.

The contract (``Bucket``, ``Grant``, ``Hold``, ``Admission``, ``AttemptAsk``, ``StateBackend``) is
:mod:`.base`; the backends are :mod:`.memory` and :mod:`.redis`; :func:`open_state` picks one by URL. The backends import the
contract from ``.base``, never from this package, so the package imports them one way.
"""

from __future__ import annotations

from .base import Admission, AttemptAdmission, AttemptAsk, Bucket, Grant, Hold, StateBackend

__all__ = ["Admission", "AttemptAdmission", "AttemptAsk", "Bucket", "Grant", "Hold", "StateBackend", "open_state"]


def open_state(url: str | None, *, prefix: str | None = None) -> StateBackend:
    """The backend named by ``[state] url``: ``memory`` (default, per process) or
    ``redis://`` / ``rediss://`` (shared; ``prefix`` namespaces its keys, default ``cloverleaf:``)."""
    from ..._errors import ConfigError

    if url in (None, "", "memory"):
        from .memory import MemoryState

        return MemoryState()
    if url.startswith(("redis://", "rediss://")):
        from .redis import open_redis_state

        return open_redis_state(url, prefix)
    scheme = url.partition("://")[0] if "://" in url else url
    raise ConfigError(f"[state] url with scheme {scheme!r} is not supported; use 'memory' or 'redis://host:6379/0'")


__all__ = ["Bucket", "Grant", "StateBackend", "open_state", "BreakerSnapshot", "BreakerDecision", "BreakerPolicy"]
