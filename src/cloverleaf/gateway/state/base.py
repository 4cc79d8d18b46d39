"""Where breakers, rate-limit windows and latency averages live: behind one interface.

Every operation is one atomic method (``take``, ``breaker_acquire``, ...), never a
get-then-set pair, so a shared backend (Redis, with one Lua script per method) can replace
:class:`~cloverleaf.gateway.state.memory.MemoryState` without the router changing: several
server workers would then share limits instead of multiplying them. The in-memory backend
is per process, and says so.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..breaker import BreakerDecision, BreakerPolicy, BreakerSnapshot


@dataclass(frozen=True, slots=True)
class Bucket:
    """One rolling-window limit taking ``amount`` (requests or tokens) for this call."""

    key: str          # e.g. "target:openai/gpt-4o:rpm"
    limit: float      # per window
    amount: float


@dataclass(frozen=True, slots=True)
class Grant:
    """The result of :meth:`StateBackend.take`.

    ``granted``: the amounts were reserved at ``now + wait`` (the caller sleeps ``wait``
    first). Not granted: nothing was taken; ``wait`` is how long it would have had to wait.
    """

    granted: bool
    wait: float
    ticket: str | None = None
    #: The bucket that forced the longest wait (for the error message).
    limiting_key: str | None = None
    #: The clock time the reservation is placed at (``now + wait``, exactly).
    at: float | None = None


class StateBackend(ABC):
    """Shared mutable gateway state. All times are the gateway clock's ``now()``."""

    #: True when several processes see the same state (Redis); False for memory.
    shared: bool = False

    @abstractmethod
    async def take(self, buckets: Sequence[Bucket], now: float, max_wait: float, window: float = 60.0) -> Grant:
        """Reserve every bucket's amount at the earliest time all of them allow, if that is
        within ``max_wait``; all or nothing."""

    @abstractmethod
    async def settle(self, ticket: str, amounts: Mapping[str, float]) -> None:
        """Close a reservation, replacing what it took from the named keys with the real
        amounts (reconcile the token estimate with the reported usage); other keys keep theirs."""

    @abstractmethod
    async def release(self, ticket: str) -> None:
        """Give back everything a reservation took (the call never reached the upstream)."""

    @abstractmethod
    async def usage(self, key: str, now: float, window: float = 60.0) -> float:
        """How much of ``key`` the last window holds (for status pages and tests)."""

    @abstractmethod
    async def breaker_acquire(self, key: str, now: float, policy: BreakerPolicy) -> BreakerDecision: ...

    @abstractmethod
    async def breaker_record(self, key: str, ok: bool, now: float, policy: BreakerPolicy,
                             error: str | None = None) -> BreakerSnapshot: ...

    @abstractmethod
    async def breaker_abandon(self, key: str) -> None:
        """Give back a half-open probe slot that was granted but not used."""

    @abstractmethod
    async def breaker_snapshots(self) -> dict[str, BreakerSnapshot]: ...

    @abstractmethod
    async def record_latency(self, key: str, latency_ms: float, alpha: float = 0.3) -> None:
        """Fold one latency into the key's exponential moving average."""

    @abstractmethod
    async def latencies(self, keys: Sequence[str]) -> dict[str, float]:
        """Moving averages for the keys that have one."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass
