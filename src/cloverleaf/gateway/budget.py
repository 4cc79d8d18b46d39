"""Spending limits per route, per project and per virtual key, that concurrent calls cannot overrun.

Before a call, the most it can cost (the prompt estimate plus ``max_tokens`` — or the
route's output allowance — at the dearest target's price) is *reserved* against every
budget that applies, in one conditional database update per budget
(``spent + reserved + amount <= limit``), which the database serialises: two concurrent
calls can never both fit into the last dollar. After the call the reservation is settled
with the real cost; a failed call releases it. Budgets live in the store, so they survive
restarts and are shared by every process using the same database. A reservation whose
process died is expired by the store after a while (``RESERVATION_TTL_SECONDS``).

Periods: ``total``, ``day`` and ``month`` (UTC calendar periods of the gateway clock).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from .._context import CallContext
from .._errors import BudgetExceeded
from .clock import Clock
from .config import BudgetConfig, RouteConfig

RESERVATION_TTL_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class BudgetScope:
    key: str          # "route:smart", "project:acme", "key:k_123"
    limit_usd: float
    period: str       # total | day | month


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    key: str
    period_key: str
    limit_usd: float
    spent_usd: float
    reserved_usd: float


def period_key(period: str | None, wall: float) -> str:
    if period in (None, "", "total"):
        return "total"
    tm = time.gmtime(wall)
    if period == "day":
        return f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
    if period == "month":
        return f"{tm.tm_year:04d}-{tm.tm_mon:02d}"
    raise ValueError(f"unknown budget period {period!r}")


class Budgets:
    def __init__(self, configs: tuple[BudgetConfig, ...], store: object, clock: Clock) -> None:
        self._route = {b.name: b for b in configs if b.scope == "route"}
        self._project = {b.name: b for b in configs if b.scope == "project"}
        self._store = store
        self._clock = clock

    def scopes(self, route: RouteConfig, ctx: CallContext) -> list[BudgetScope]:
        out = []
        if (b := self._route.get(route.name)) is not None:
            out.append(BudgetScope(b.key, b.limit_usd, b.period))
        if ctx.project and (b := self._project.get(ctx.project)) is not None:
            out.append(BudgetScope(b.key, b.limit_usd, b.period))
        key = ctx.key
        if key is not None and key.budget is not None:
            out.append(BudgetScope(f"key:{key.key_id}", float(key.budget), key.budget_period or "total"))
        return out

    async def reserve(self, scopes: list[BudgetScope], amount: float) -> list[str]:
        """Reserve ``amount`` USD in every scope, all or nothing; raise BudgetExceeded.

        The database work runs on a thread, which a cancellation cannot stop: if the caller
        is cancelled meanwhile, what the thread goes on to reserve is released when it lands.
        """
        if not scopes:
            return []
        work = asyncio.ensure_future(asyncio.to_thread(self._reserve_sync, scopes, amount, self._clock.wall()))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, work: asyncio.Future[list[str]]) -> None:
        if not work.cancelled() and work.exception() is None:
            work.get_loop().run_in_executor(None, self._settle_sync, work.result(), 0.0)

    def _reserve_sync(self, scopes: list[BudgetScope], amount: float, wall: float) -> list[str]:
        store = self._store
        taken: list[str] = []
        for scope in scopes:
            ok, rid, spent, reserved = store.budget_reserve(  # type: ignore[attr-defined]
                scope.key, period_key(scope.period, wall), scope.limit_usd, amount, wall)
            if not ok:
                for done in taken:
                    store.budget_settle(done, 0.0)  # type: ignore[attr-defined]
                raise BudgetExceeded(scope.key, scope.limit_usd, spent, reserved + amount)
            taken.append(rid)
        return taken

    async def settle(self, reservations: list[str], cost: float) -> None:
        if reservations:
            await asyncio.to_thread(self._settle_sync, reservations, cost)

    def _settle_sync(self, reservations: list[str], cost: float) -> None:
        for rid in reservations:
            self._store.budget_settle(rid, cost)  # type: ignore[attr-defined]

    def status(self) -> list[BudgetStatus]:
        """Every configured budget with its current period's spend (for the CLI/admin API)."""
        wall = self._clock.wall()
        out = []
        for b in (*self._route.values(), *self._project.values()):
            pk = period_key(b.period, wall)
            spent, reserved = self._store.budget_usage(b.key, pk)  # type: ignore[attr-defined]
            out.append(BudgetStatus(b.key, pk, b.limit_usd, spent, reserved))
        return out
