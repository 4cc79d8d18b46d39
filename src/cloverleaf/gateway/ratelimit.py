"""Requests-per-minute and tokens-per-minute limits, per provider, target, route and key.

Each scope that has a limit contributes two rolling-window buckets (see
``state/window.py``): one request, and the estimated tokens (prompt estimate + the
output allowance). All buckets an attempt needs are taken in ONE atomic state operation,
so concurrent calls can never overshoot a limit between a check and a write. A call that
must wait for room sleeps on the gateway clock up to the limit's ``max_wait``; beyond that
it fails with :class:`~cloverleaf.RateLimitExceeded` (which a route may treat as a
reason to fall back). After the call the token reservation is replaced by the usage the
provider reported.

Scopes: ``provider`` and ``target`` per attempt (they protect upstreams); ``route`` and
``key`` once per call (they meter callers). A virtual key's limits never wait: the key
holder gets a 429 at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .._context import KeyPolicy
from .._errors import RateLimitExceeded
from .clock import Clock
from .config import Limit, LimitsConfig, RouteConfig
from .router import ResolvedTarget
from .state import Bucket, StateBackend

WINDOW_SECONDS = 60.0


@dataclass(slots=True)
class Reservation:
    ticket: str
    token_keys: tuple[str, ...]
    estimated_tokens: int


class RateLimiter:
    def __init__(self, limits: LimitsConfig, state: StateBackend, clock: Clock) -> None:
        self._limits = limits
        self._state = state
        self._clock = clock

    # -- which buckets ----------------------------------------------------------------
    def call_buckets(self, route: RouteConfig, key: KeyPolicy | None, tokens: int) -> tuple[list[Bucket], float]:
        buckets: list[Bucket] = []
        max_wait = float("inf")
        if not route.implicit:
            limit = self._limits.for_scope("route", route.name)
            if limit is not None:
                buckets += _buckets(f"route:{route.name}", limit, tokens)
                max_wait = min(max_wait, limit.max_wait)
        if key is not None and (key.rpm or key.tpm):
            buckets += _buckets(f"key:{key.key_id}", Limit(key.rpm, key.tpm, 0.0), tokens)
            max_wait = 0.0
        return buckets, (0.0 if max_wait == float("inf") else max_wait)

    def attempt_buckets(self, target: ResolvedTarget, tokens: int) -> tuple[list[Bucket], float]:
        buckets: list[Bucket] = []
        waits = []
        for scope, name in (("provider", target.provider), ("target", target.key)):
            limit = self._limits.for_scope(scope, name)
            if limit is not None:
                buckets += _buckets(f"{scope}:{name}", limit, tokens)
                waits.append(limit.max_wait)
        return buckets, min(waits, default=0.0)

    # -- taking and settling ----------------------------------------------------------
    async def acquire(self, buckets: list[Bucket], max_wait: float) -> Reservation | None:
        """Take every bucket (waiting up to ``max_wait``) or raise RateLimitExceeded."""
        if not buckets:
            return None
        grant = await self._state.take(buckets, self._clock.now(), max_wait, WINDOW_SECONDS)
        if not grant.granted:
            scope, _, kind = (grant.limiting_key or "limit:?:rpm").rpartition(":")
            raise RateLimitExceeded(scope, kind, retry_after=grant.wait)
        assert grant.ticket is not None
        reservation = Reservation(grant.ticket, tuple(b.key for b in buckets if b.key.endswith(":tpm")),
                                  int(max((b.amount for b in buckets if b.key.endswith(":tpm")), default=0)))
        if grant.wait > 0:
            try:
                await self._clock.sleep(grant.wait)
            except asyncio.CancelledError:
                await self._state.release(grant.ticket)
                raise
        return reservation

    async def settle(self, reservation: Reservation | None, tokens_used: int | None) -> None:
        """Replace the token estimate with what the provider reported (None: keep the estimate)."""
        if reservation is None:
            return
        amounts = {} if tokens_used is None else {k: float(tokens_used) for k in reservation.token_keys}
        await self._state.settle(reservation.ticket, amounts)

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            await self._state.release(reservation.ticket)


def _buckets(scope: str, limit: Limit, tokens: int) -> list[Bucket]:
    out = []
    if limit.rpm:
        out.append(Bucket(f"{scope}:rpm", float(limit.rpm), 1.0))
    if limit.tpm:
        out.append(Bucket(f"{scope}:tpm", float(limit.tpm), float(tokens)))
    return out
