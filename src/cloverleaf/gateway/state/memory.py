"""The in-process state backend: dicts behind one lock.

Per process: two server workers each enforce the full limit. The lock is a threading lock,
held for microseconds and never across an ``await``, because the same state is used by
async callers on their own loop and by the sync Client's private loop thread.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence

from ..breaker import BreakerDecision, BreakerPolicy, BreakerSnapshot, on_abandon, on_acquire, on_result
from .base import Bucket, Grant, StateBackend
from .window import Entry, Log


class MemoryState(StateBackend):
    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, Log] = {}
        self._tickets: dict[str, dict[str, tuple[Log, Entry]]] = {}
        self._breakers: dict[str, BreakerSnapshot] = {}
        self._latency: dict[str, float] = {}
        self._ids = itertools.count(1)

    async def take(self, buckets: Sequence[Bucket], now: float, max_wait: float, window: float = 60.0) -> Grant:
        with self._lock:
            at, limiting = now, None
            logs = []
            for b in buckets:
                log = self._logs.get(b.key)
                if log is None:
                    log = self._logs[b.key] = Log()
                log.prune(now, window)
                logs.append(log)
                t = log.earliest(b.limit, b.amount, now, window)
                if t > at:
                    at, limiting = t, b.key
            wait = at - now
            if wait > max_wait:
                return Grant(False, wait, None, limiting)
            ticket = f"t{next(self._ids)}"
            entries: dict[str, tuple[Log, Entry]] = {}
            for b, log in zip(buckets, logs, strict=True):
                entry = Entry(at, min(b.amount, b.limit), ticket)
                log.add(entry)
                entries[b.key] = (log, entry)
            self._tickets[ticket] = entries
            return Grant(True, wait, ticket, limiting, at)

    async def settle(self, ticket: str, amounts: Mapping[str, float]) -> None:
        with self._lock:
            entries = self._tickets.pop(ticket, {})
            for key, amount in amounts.items():
                if key in entries:
                    log, entry = entries[key]
                    log.set_amount(entry, max(0.0, amount))

    async def release(self, ticket: str) -> None:
        with self._lock:
            for log, entry in self._tickets.pop(ticket, {}).values():
                log.set_amount(entry, 0.0)

    async def usage(self, key: str, now: float, window: float = 60.0) -> float:
        with self._lock:
            log = self._logs.get(key)
            return log.used(now, window) if log is not None else 0.0

    async def breaker_acquire(self, key: str, now: float, policy: BreakerPolicy) -> BreakerDecision:
        with self._lock:
            snap, decision = on_acquire(self._breakers.get(key, BreakerSnapshot()), now, policy)
            self._breakers[key] = snap
            return decision

    async def breaker_record(self, key: str, ok: bool, now: float, policy: BreakerPolicy,
                             error: str | None = None) -> BreakerSnapshot:
        with self._lock:
            snap = on_result(self._breakers.get(key, BreakerSnapshot()), ok, now, policy, error)
            self._breakers[key] = snap
            return snap

    async def breaker_abandon(self, key: str) -> None:
        with self._lock:
            if key in self._breakers:
                self._breakers[key] = on_abandon(self._breakers[key])

    async def breaker_snapshots(self) -> dict[str, BreakerSnapshot]:
        with self._lock:
            return dict(self._breakers)

    async def record_latency(self, key: str, latency_ms: float, alpha: float = 0.3) -> None:
        with self._lock:
            old = self._latency.get(key)
            self._latency[key] = latency_ms if old is None else alpha * latency_ms + (1 - alpha) * old

    async def latencies(self, keys: Sequence[str]) -> dict[str, float]:
        with self._lock:
            return {k: self._latency[k] for k in keys if k in self._latency}
