"""Spending limits per route, per project and per virtual key, that concurrent calls cannot overrun.

Before a call, the most it can cost is *reserved* against every budget that applies: the
prompt's token bound (``estimate.py``: its UTF-8 length, which no tokenizer exceeds) plus
``max_tokens`` — or the route's output allowance —, at the dearest target's price, priced
at the higher of the input and output rates. ``spent + reserved + amount <= limit`` is
checked and the amount reserved in ONE atomic state operation together with the call's
rate-limit buckets (:meth:`StateBackend.admit`): two concurrent calls can never both fit
into the last dollar, in one process (memory state) or across workers and replicas sharing
Redis. After the call the reservation becomes the real cost; a failed call releases it.

No database round trip on the request path: the counters live in the state backend. The
store is the durable ledger behind them — each settled cost is added to it with the next
batch of the store's writer (``store/spend.py``), as call records are — and a counter the
backend does not hold yet (a fresh process, a Redis that came back empty) is seeded from the
ledger the first time a call needs it (one read per counter, then never again; where the
period has no ledger row yet, one insert that sums the scope's call records makes it).

Crash bound: a ``kill -9`` can leave at most one writer flush interval (``[store]
flush_ms``) of spend unrecorded in the ledger, never half a batch. With Redis state that is
never an overspend: the counters the other processes (and the restarted one) use are in
Redis, untouched; reservations the dead process held are given back after
``RESERVATION_TTL`` (state/redis.py). With memory state the counter dies with the process,
and a restart seeds from the ledger: the spend of at most that last flush interval is then
missing from the counter — keep ``flush_ms`` short, or use Redis, where that matters.

A Redis that comes back empty: each counter is seeded again from the ledger when a call
first needs it, and a call that was in flight is still charged to it when it ends (its
reservation went with the data; CLOSE adds the cost to any counter it finds). What the new
counter can lack — so what can be spent past the limit — is bounded: the reservations of
the calls in flight when the data went (their room is free until they end), and spend that
other processes settled within their last flush interval before the seed (not yet in the
ledger; this process adds its own unwritten spend, ``_seed``). Settlement writes the spend
to the ledger whether or not the state backend took it, so an outage loses none.

Spend before a budget applied counts against it. Only calls that held a reservation reach the
ledger, so a budget that starts to apply to a scope that has spent already — a virtual key
given a budget, another period, or one again after it was removed (:meth:`Budgets.recount`,
which the server's admin API calls); a route or project budget added to cloverleaf.toml
mid-period, or added back after it was removed (the first time a process needs such a
budget's counter it raises the counter and its ledger row to the call records,
``store.budget_recount``, :meth:`Budgets._open`: a row or a Redis counter left from before
the budget was removed lacks what was spent while it was off) — starts from the period's
spend so far, as the call records show it, not from $0. This costs a database write once per
counter per process, never per call. What it can miss: calls still in flight when the budget starts, and calls
other processes answer before they see the change (a key's, within ``SYNC_SECONDS``) or have
not written yet (their last flush interval).

``[state] budgets = "store"`` keeps the previous behaviour — one conditional database
update per budget per call (exact across processes that share only the database, slow) —
for several workers without shared state; ``cloverleaf serve --workers N`` selects it when
``[state] url`` is not Redis.

Periods: ``total``, ``day`` and ``month`` (UTC calendar periods of the gateway clock).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._context import CallContext
from .._errors import BudgetExceeded, RateLimitExceeded
from .clock import Clock
from .config import BudgetConfig, RouteConfig
from .model_budgets import Canonical, ModelBudgets, charges, model_of
from .ratelimit import upstream_keys as route_keys
from .router import MAX_CACHED
from .state import AnyBucket, AttemptAsk, Hold, StateBackend, flatten, new_hold

RESERVATION_TTL_SECONDS = 3600.0
_SEED_ATTEMPTS = 3


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


class _Periods:
    """``period_key`` for the current wall time, recomputed only when a UTC day starts."""

    __slots__ = ("_until", "_day", "_month")

    def __init__(self) -> None:
        self._until = -1.0
        self._day = self._month = ""

    def key(self, period: str, wall: float) -> str:
        if period == "total":
            return "total"
        if not (self._until - 86_400.0 <= wall < self._until):
            self._day, self._month = period_key("day", wall), period_key("month", wall)
            self._until = (wall // 86_400.0 + 1) * 86_400.0
        return self._day if period == "day" else self._month


class CallAdmission:
    """What one call holds between admission and settlement: its call-level rate-limit
    buckets and its budget reservations, under one ticket (``counters``: the reservations'
    ``"<scope>|<period>"`` counters, which settlement books the spend to; ``models``: the
    model each reservation's budget is on, when one is a model-id budget, else ())."""

    __slots__ = ("ticket", "token_keys", "counters", "reserved_usd", "extra", "first", "took", "models",
                 "buckets")

    def __init__(self, ticket: object, token_keys: tuple[str, ...], counters: Sequence[str],
                 reserved_usd: float, extra: object = None, first: object = None, took: bool = True,
                 models: tuple[str | None, ...] = (), buckets: Sequence[AnyBucket] = ()) -> None:
        self.ticket = ticket
        self.token_keys = token_keys
        self.counters = counters
        self.reserved_usd = reserved_usd
        self.extra = extra       # the store mode's reservation ids
        self.first = first       # the first attempt's AttemptAdmission, when it was asked for
        self.took = took         # the call itself took buckets or holds (there is something to close)
        self.models = models     # ModelBudgets.models: settled per budget (model_budgets.charges)
        self.buckets = buckets   # the call's rate-limit buckets (their route's keys: upstream_keys)

    @property
    def upstream_keys(self) -> tuple[str, ...]:
        """The keys of the route's buckets, which a cache hit gives back (``ratelimit.upstream_keys``):
        worked out when asked, a hit being the rare case."""
        return route_keys(self.buckets) if self.buckets else ()


class Budgets:
    """Budget scopes and reservations over the state backend (see the module docstring)."""

    mode = "state"

    def __init__(self, configs: tuple[BudgetConfig, ...], store: object, state: StateBackend, clock: Clock,
                 routes: Mapping[str, RouteConfig] | None = None, canonical: Canonical | None = None) -> None:
        self._route = {b.name: BudgetScope(b.key, b.limit_usd, b.period) for b in configs if b.scope == "route"}
        #: route budgets named after no configured route: model ids (model_budgets.py)
        routes = routes or {}
        self._models = ModelBudgets({n: b for n, b in self._route.items() if n not in routes} if canonical else {},
                                    routes, canonical or (lambda _: None))
        self._project = {b.name: BudgetScope(b.key, b.limit_usd, b.period) for b in configs if b.scope == "project"}
        #: configured budgets (routes, projects): cloverleaf.toml may have had them off for a while
        self._configured = frozenset(b.key for b in configs)
        #: their counters this process has raised to the call records (``_open``): once each
        self._opened: set[str] = set()
        self._store = store
        self._state = state
        self._clock = clock
        self._periods = _Periods()
        #: the scopes of a call depend on its resolved targets only through model-id budgets
        self._per_targets = bool(self._models)
        # per call these are looked up, not built: a call's scopes (with the resolved target list
        # they were worked out for, when they depend on it; else None), their counters
        # ("scope|period"). Bounded as the router's resolutions are (MAX_CACHED, cleared when
        # full): a caller allowed "provider/*" brings a new route with every model name it tries
        self._scope_sets: dict[tuple[str, str | None, tuple[str, float, str | None] | None],
                               tuple[Sequence[object] | None, tuple[BudgetScope, ...]]] = {}
        #: one tuple per distinct set of scopes, so the counters below are worked out per set,
        #: not per route name
        self._scope_tuples: dict[tuple[BudgetScope, ...], tuple[BudgetScope, ...]] = {}
        #: id(scopes) → (scopes, the wall-clock span their counters hold for, the counters, each
        #: with its scope's limit, those of configured budgets this process has not opened yet,
        #: and the model of each scope that is a model-id budget: ModelBudgets.models)
        self._counter_sets: dict[int, tuple[Sequence[BudgetScope], float, float, tuple[str, ...],
                                            tuple[tuple[str, float], ...], tuple[str, ...],
                                            tuple[str | None, ...]]] = {}

    def scopes(self, route: RouteConfig, ctx: CallContext, targets: Sequence[object] = ()) -> tuple[BudgetScope, ...]:
        """The budgets a call on ``route`` (``targets``: its resolved targets, the Router's
        list) with ``ctx`` reserves against; the same tuple for the same route, target list,
        project and key budget (worked out once, then looked up)."""
        key = ctx.key
        signature = (route.name, ctx.project,
                     None if key is None or key.budget is None else (key.key_id, key.budget, key.budget_period))
        found = self._scope_sets.get(signature)
        if found is None or (self._per_targets and found[0] is not targets):
            if len(self._scope_sets) >= MAX_CACHED:
                self._scope_sets.clear()
            scopes = self._scopes(route, ctx, targets)
            shared = self._scope_tuples.get(scopes)
            if shared is None:
                if len(self._scope_tuples) >= MAX_CACHED:
                    self._scope_tuples.clear()
                shared = self._scope_tuples[scopes] = scopes
            found = self._scope_sets[signature] = (targets if self._per_targets else None, shared)
        return found[1]

    def _scopes(self, route: RouteConfig, ctx: CallContext, targets: Sequence[object]) -> tuple[BudgetScope, ...]:
        out = []
        if (b := self._route.get(route.name)) is not None:
            out.append(b)
        if self._models:   # a model-id budget, whatever name the call reaches its model by
            out.extend(b for b in self._models.applying(route.name, targets) if b not in out)
        if ctx.project and (b := self._project.get(ctx.project)) is not None:
            out.append(b)
        key = ctx.key
        if key is not None and key.budget is not None:
            out.append(BudgetScope(f"key:{key.key_id}", float(key.budget), key.budget_period or "total"))
        return tuple(out)

    def _holds(self, scopes: Sequence[BudgetScope], wall: float, amount: float
               ) -> tuple[list[Hold], tuple[str, ...], tuple[str, ...], tuple[str | None, ...]]:
        """One hold of ``amount`` per scope, on its counter for the period ``wall`` is in, the
        counters, those of them still to open (:meth:`_open`), and the scopes' models
        (:meth:`ModelBudgets.models`). The counters of a tuple of scopes are worked out once per
        UTC day (a day or month period changes only when a day starts; ``total`` never)."""
        found = self._counter_sets.get(id(scopes))
        if found is None or found[0] is not scopes or not (found[1] <= wall < found[2]):
            if len(self._counter_sets) >= MAX_CACHED:
                self._counter_sets.clear()
            counters = tuple([self._counter(s, wall) for s in scopes])
            start, end = -math.inf, math.inf
            if any(s.period != "total" for s in scopes):
                start = wall // 86_400.0 * 86_400.0
                end = start + 86_400.0
            limits = tuple([(counter, s.limit_usd) for counter, s in zip(counters, scopes, strict=True)])
            unopened = tuple([c for c, s in zip(counters, scopes, strict=True)
                              if s.key in self._configured and c not in self._opened])
            models = self._models.models(scopes) if self._models else ()
            found = self._counter_sets[id(scopes)] = (scopes, start, end, counters, limits, unopened, models)
        elif found[5] and not (unopened := tuple([c for c in found[5] if c not in self._opened])):
            found = self._counter_sets[id(scopes)] = (found[0], found[1], found[2], found[3], found[4], (), found[6])
        return [new_hold((counter, limit, amount)) for counter, limit in found[4]], found[3], found[5], found[6]

    def _counter(self, scope: BudgetScope, wall: float) -> str:
        period = scope.period
        if period != "total":
            period = self._periods.key(period, wall)
        return f"{scope.key}|{period}"

    # -- admission ------------------------------------------------------------------
    async def admit(self, buckets: list[AnyBucket], max_wait: float, scopes: Sequence[BudgetScope], amount: float,
                    now: float, window: float, sleep: Clock, attempt: AttemptAsk | None = None,
                    token_keys: tuple[str, ...] | None = None) -> CallAdmission | None:
        """Take the call's rate-limit buckets and reserve ``amount`` in every scope — and admit
        its first ``attempt`` — in one state operation; sleep out a granted wait. Raises
        RateLimitExceeded or BudgetExceeded. ``token_keys``: the keys of the buckets that count
        tokens, when the caller has them (``RateLimiter.call_buckets``)."""
        if not buckets and not scopes and attempt is None:
            return None
        holds, counters, unopened, models = (self._holds(scopes, self._clock.wall(), amount) if scopes
                                             else ([], (), (), ()))
        if unopened:
            await self._open(unopened)
        state = self._state
        for _ in range(_SEED_ATTEMPTS):
            adm = await state.admit(buckets, holds, now, max_wait, window, attempt)
            if not adm.unseeded:
                break
            await self._seed(adm.unseeded)
            # Seeding awaited the ledger, and calls that came meanwhile were admitted at later
            # times: asking again at the old ``now`` would put this call behind them (a wait it
            # does not need, a 429 where nothing may wait). Ask at the time it is now.
            now = sleep.now()
        if not adm.granted:
            key = adm.limiting_key or "limit:?:rpm"
            if "|" in key:
                scope = key.partition("|")[0]
                limit = next(h.limit for h in holds if h.key == key)
                raise BudgetExceeded(self.label(scope), limit, adm.spent, amount, reserved=adm.reserved)
            scope, _, kind = key.rpartition(":")
            raise RateLimitExceeded(scope, kind, retry_after=adm.wait)
        if token_keys is None:
            token_keys = tuple([b.key for b in flatten(buckets) if b.key.endswith(":tpm")]) if buckets else ()
        first = adm.attempt
        call = CallAdmission(adm.ticket, token_keys, counters, amount if holds else 0.0, None, first,
                             bool(buckets or holds), models, buckets)
        wait = adm.wait
        if first is not None and first.grant is not None and first.grant.granted and first.grant.wait > wait:
            wait = first.grant.wait
        if wait > 0:
            try:
                await sleep.sleep(wait)
            except asyncio.CancelledError:
                await state.close(adm.ticket, None, 0.0)
                if first is not None and first.grant is not None and first.grant.granted:
                    if first.grant.ticket is not None:
                        await state.release(first.grant.ticket)
                    if first.decision.probe:
                        await state.breaker_abandon(attempt.key)  # type: ignore[union-attr]
                raise
        return call

    async def _seed(self, keys: Sequence[str]) -> None:
        """Start counters the state backend lacks from the ledger (once per counter); a ledger
        row the period does not have yet is made from the call records (``budget_open``)."""
        for key in keys:
            await self._state.budget_seed(key, await self._ledger_figure(key, "budget_open"))

    async def _open(self, counters: Sequence[str]) -> None:
        """The first time this process needs a configured budget's counter, raise it (and its
        ledger row) to what the call records show the scope spent in the period. The budget may
        have been off for a while — removed from cloverleaf.toml and added back — and only calls
        that held a reservation reach the ledger, so the row, and a counter a Redis kept, lack
        what was spent meanwhile; a counter is never lowered. Once per counter per process (a
        day's: once a day), never per call; concurrent first calls may each do it (harmless)."""
        for counter in counters:
            if counter not in self._opened:
                await self._state.budget_raise(counter, await self._ledger_figure(counter, "budget_recount"))
                self._opened.add(counter)

    async def _ledger_figure(self, key: str, read: str) -> float:
        """What the counter ``key`` starts from: the ledger's figure (``store.<read>``) plus
        spend this process has summed but not committed yet, read first: a batch committing
        between the two reads is then counted twice (a stricter budget for a while), never missed."""
        store = self._store
        pending = getattr(getattr(store, "spend_batch", None), "pending", None)
        scope, _, period = key.partition("|")
        unwritten = pending().get((scope, period), 0.0) if pending is not None else 0.0
        spent, reserved = await asyncio.to_thread(self._ledger_read(read, scope), scope, period)
        return float(spent + reserved + unwritten)

    def _ledger_read(self, read: str, scope: str) -> Any:
        """``store.<read>`` for ``scope``: a model-id budget's given the names its calls are
        requested by (:meth:`ModelBudgets.covers`)."""
        method = getattr(self._store, read)
        covers = self._models.covers(scope)
        return functools.partial(method, covers=covers) if covers else method

    async def recount(self, scope: BudgetScope) -> None:
        """``scope``'s budget starts to apply to spend made before it (a key given a budget, or
        another period): its ledger row for the current period is raised to what the call
        records show it spent in that period — this process's records written first — and its
        counter in the state backend raised to that, so a counter left from an earlier time the
        budget applied is not trusted as it stands (Redis: for every replica; memory: this
        process, the only one counting there, as several workers without Redis count in the
        store). Off the request path: the admin API's, once per change."""
        counter = self._counter(scope, self._clock.wall())
        await asyncio.to_thread(self._store.flush)  # type: ignore[attr-defined]
        await self._state.budget_raise(counter, await self._ledger_figure(counter, "budget_recount"))

    # -- settlement -----------------------------------------------------------------
    async def close(self, call: CallAdmission | None, tokens_used: int | None, cost: float,
                    charged_to: object = None, hit: bool = False) -> None:
        """Replace the token estimate (None: keep it) and turn every reservation into ``cost``
        — a model-id budget's into 0 when ``charged_to`` (the resolved target the call is
        billed for: its answer's, or its last attempt's) is another model's (:func:`charges`).
        ``hit``: a response-cache hit, which gives its route's buckets back whole (its key's
        requests still count: :func:`.ratelimit.upstream_keys`)."""
        if call is None or not call.took:
            return
        call.took = False
        counters, call.counters = call.counters, ()
        costs = charges(call.models, _model(charged_to), cost) if call.models else None
        amounts = {} if tokens_used is None else dict.fromkeys(call.token_keys, float(tokens_used))
        if hit:
            amounts.update(dict.fromkeys(call.upstream_keys, 0.0))
        try:
            await self._state.close(call.ticket, amounts, cost if counters else 0.0, costs)
        finally:   # the ledger hears of the spend even when the state backend is away
            self._record_spend(counters, cost, costs)

    async def finish(self, call: CallAdmission, tokens_used: int | None, cost: float, attempt: object,
                     target: str, now: float, policy: object, latency_ms: float, answered: object = None) -> None:
        """A successful call's settlement and its answering attempt's (``attempt``: its
        rate-limit Reservation or None), breaker and latency, in one state operation.
        ``answered``: the resolved target that answered (see :meth:`close`)."""
        took, call.took = call.took, False
        counters, call.counters = call.counters, ()
        costs = charges(call.models, _model(answered), cost) if call.models else None
        used = None if tokens_used is None else float(tokens_used)
        amounts = {} if used is None else dict.fromkeys(call.token_keys, used)
        attempt_ticket = getattr(attempt, "ticket", None)
        attempt_amounts = {} if used is None or attempt is None else dict.fromkeys(attempt.token_keys, used)  # type: ignore[attr-defined]
        try:
            await self._state.finish(call.ticket if took else None, amounts, cost if counters else 0.0,
                                     attempt_ticket, attempt_amounts, target, now, policy,  # type: ignore[arg-type]
                                     latency_ms, costs)
        finally:   # the ledger hears of the spend even when a later step of the settlement failed
            self._record_spend(counters, cost, costs)

    def _record_spend(self, counters: Sequence[str], cost: float, costs: Sequence[float] | None = None) -> None:
        """The call's cost to the ledger, with the store's next batch (``costs``: each
        counter's own, as the state backend was told). Always, whether or not the state backend
        took it: the ledger is what a counter is seeded from again, and must agree with it."""
        if costs is not None:
            for counter, charged in zip(counters, costs, strict=True):
                if charged:
                    self._store.record_spend_many((counter,), charged)  # type: ignore[attr-defined]
        elif counters and cost:
            self._store.record_spend_many(counters, cost)  # type: ignore[attr-defined]

    # -- status ---------------------------------------------------------------------
    def configured(self) -> list[BudgetScope]:
        return [*self._route.values(), *self._project.values()]

    def label(self, scope_key: str) -> str:
        """``scope_key`` as a person reads it: a model-id budget's is ``model:provider/model``
        (:meth:`ModelBudgets.label`), every other its key (``route:smart``, ``key:k_1``)."""
        return self._models.label(scope_key) if self._models else scope_key

    async def status(self) -> list[BudgetStatus]:
        """Every configured budget (routes, projects) with its current period's spend and reservations."""
        return await self.usage(self.configured())

    async def usage(self, scopes: Sequence[BudgetScope]) -> list[BudgetStatus]:
        """Each scope's current period: spent, and reserved right now by calls in flight — as
        admission sees them, from the state backend's counters. The store's ledger never hears
        of a reservation in this mode (it read "$0 reserved" while calls were refused for lack
        of room), so it answers only for a counter the backend does not hold (no call has
        needed it since the process started; or the backend cannot be reached): flushed
        first, it has every settled call of this process."""
        wall = self._clock.wall()
        counters = [self._counter(s, wall) for s in scopes]
        held = await self._held(counters)
        wanted = [(s.key, c.rpartition("|")[2]) for s, c in zip(scopes, counters, strict=True) if c not in held]
        ledger = await asyncio.to_thread(self._ledger, wanted) if wanted else {}
        out = []
        for scope, counter in zip(scopes, counters, strict=True):
            period = counter.rpartition("|")[2]
            spent, reserved = held.get(counter) or ledger[(scope.key, period)]
            out.append(BudgetStatus(scope.key, period, scope.limit_usd, spent, reserved))
        return out

    async def _held(self, counters: Sequence[str]) -> dict[str, tuple[float, float]]:
        """(spent, reserved) of the counters the state backend holds (no more asking once it
        cannot be reached: one timeout, not one per budget)."""
        held: dict[str, tuple[float, float]] = {}
        for counter in counters:
            try:
                got = await self._state.budget_usage(counter)
            except Exception:  # noqa: BLE001 - the state backend is away: the ledger answers
                break
            if got is not None:
                held[counter] = got
        return held

    def _ledger(self, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[float, float]]:
        """(spent, reserved) per (scope, period key), from the store's ledger (flushed first);
        a row the period does not have yet made from the call records, and a configured budget's
        raised to them, as its counter would be (:meth:`_open`)."""
        store: Any = self._store
        store.flush()
        # the rows there are, in one read: a read per budget (its own connection and round trips)
        # made the Spend page's 100 key budgets take 7 s on PostgreSQL, at every load
        rows = getattr(store, "budget_rows", None)
        plain = [pair for pair in wanted if pair[0] not in self._configured]
        found: dict[tuple[str, str], tuple[float, float]] = rows(plain) if rows is not None and plain else {}
        return {(scope, period): found.get((scope, period))
                or self._ledger_read("budget_recount" if scope in self._configured else "budget_open", scope)(
                    scope, period) for scope, period in wanted}


class StoreBudgets(Budgets):
    """``[state] budgets = "store"``: every reservation and settlement a database transaction
    (the ledger's conditional update), for processes that share only the database."""

    mode = "store"

    def __init__(self, configs: tuple[BudgetConfig, ...], store: object, state: StateBackend, clock: Clock,
                 limiter: object, routes: Mapping[str, RouteConfig] | None = None,
                 canonical: Canonical | None = None) -> None:
        super().__init__(configs, store, state, clock, routes, canonical)
        self._limiter = limiter

    async def admit(self, buckets: list[AnyBucket], max_wait: float, scopes: Sequence[BudgetScope], amount: float,
                    now: float, window: float, sleep: Clock, attempt: AttemptAsk | None = None,
                    token_keys: tuple[str, ...] | None = None) -> CallAdmission | None:
        if not buckets and not scopes:   # the first attempt is admitted by the attempt loop
            return None
        reservation = await self._limiter.acquire(buckets, max_wait)  # type: ignore[attr-defined]
        try:
            ids = await self._reserve(scopes, amount) if scopes else []
        except BaseException:
            await self._limiter.release(reservation)  # type: ignore[attr-defined]
            raise
        models = self._models.models(scopes) if ids and self._models else ()
        return CallAdmission(None, (), (), amount if ids else 0.0, (reservation, ids), models=models,
                             buckets=buckets)

    async def close(self, call: CallAdmission | None, tokens_used: int | None, cost: float,
                    charged_to: object = None, hit: bool = False) -> None:
        if call is None or call.extra is None:
            return
        extra: tuple[Any, list[str]] = call.extra  # type: ignore[assignment]
        call.extra = None
        reservation, ids = extra
        costs = charges(call.models, _model(charged_to), cost) if call.models else None
        try:
            await self._limiter.settle(reservation, tokens_used,  # type: ignore[attr-defined]
                                       call.upstream_keys if hit else ())
        finally:
            if ids:
                await asyncio.shield(asyncio.to_thread(self._settle_sync, ids, cost, costs))

    async def _reserve(self, scopes: Sequence[BudgetScope], amount: float) -> list[str]:
        """The database work runs on a thread, which a cancellation cannot stop: if the caller
        is cancelled meanwhile, what the thread goes on to reserve is released when it lands."""
        work = asyncio.ensure_future(asyncio.to_thread(self._reserve_sync, scopes, amount, self._clock.wall()))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, work: asyncio.Future[list[str]]) -> None:
        if not work.cancelled() and work.exception() is None:
            work.get_loop().run_in_executor(None, self._settle_sync, work.result(), 0.0)

    def _reserve_sync(self, scopes: Sequence[BudgetScope], amount: float, wall: float) -> list[str]:
        store: Any = self._store
        taken: list[str] = []
        for scope in scopes:
            period = period_key(scope.period, wall)
            if scope.key in self._configured and (counter := f"{scope.key}|{period}") not in self._opened:
                # the ledger row is the counter here: raised to the call records once per
                # process, as Budgets._open raises a state counter
                self._ledger_read("budget_recount", scope.key)(scope.key, period)
                self._opened.add(counter)
            ok, rid, spent, reserved = self._ledger_read("budget_reserve", scope.key)(
                scope.key, period, scope.limit_usd, amount, wall)
            if not ok:
                for done in taken:
                    store.budget_settle(done, 0.0)
                raise BudgetExceeded(self.label(scope.key), scope.limit_usd, spent, amount, reserved=reserved)
            taken.append(rid)
        return taken

    async def recount(self, scope: BudgetScope) -> None:
        """The ledger row is the counter here: raised to the call records (see ``Budgets.recount``)."""
        def work() -> None:
            store: Any = self._store
            store.flush()
            store.budget_recount(scope.key, period_key(scope.period, self._clock.wall()))

        await asyncio.to_thread(work)

    async def usage(self, scopes: Sequence[BudgetScope]) -> list[BudgetStatus]:
        """In this mode the ledger holds the reservations too: it is the one place to read."""
        wall = self._clock.wall()
        wanted = [(s.key, period_key(s.period, wall)) for s in scopes]
        ledger = await asyncio.to_thread(self._ledger, wanted) if wanted else {}
        return [BudgetStatus(s.key, w[1], s.limit_usd, *ledger[w]) for s, w in zip(scopes, wanted, strict=True)]

    def _settle_sync(self, reservations: list[str], cost: float, costs: Sequence[float] | None = None) -> None:
        """Each reservation (one per scope, in the call's order) into ``cost``, or its own of ``costs``."""
        for rid, charged in zip(reservations, costs if costs is not None else [cost] * len(reservations),
                                strict=True):
            self._store.budget_settle(rid, charged)  # type: ignore[attr-defined]


def _model(target: object) -> str | None:
    """The model a resolved target (the Router's ResolvedTarget) reaches, or None when unknown."""
    return model_of(getattr(target, "target", None), "") or None if target is not None else None
