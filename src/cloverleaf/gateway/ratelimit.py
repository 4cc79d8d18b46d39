"""Requests-per-minute and tokens-per-minute limits, per provider, target, route and key.

Each scope that has a limit contributes two rolling-window buckets (see
``state/window.py``): one request, and the estimated tokens (prompt estimate + the
output allowance). A call's route and key scopes give each one bucket with both as lanes
(``state.Lanes``: one log to walk, one ticket entry, one settlement where two were). All buckets an attempt needs are taken in ONE atomic state operation,
so concurrent calls can never overshoot a limit between a check and a write. A call that
must wait for room sleeps on the gateway clock up to the limit's ``max_wait``; beyond that
it fails with :class:`~cloverleaf.RateLimitExceeded` (which a route may treat as a
reason to fall back). A call that alone needs more tokens than a whole limit is refused at
once (``never_fits``: no wait would make room), and its output is capped at what it reserved
when it sets no ``max_tokens`` (``Gateway._admit``). After the call the token reservation is
replaced by the usage the provider reported.

Scopes: ``provider`` and ``target`` per attempt (they protect upstreams); ``route`` and
``key`` once per call (they meter callers; they are taken together with the call's budget
reservations in one state operation, see ``budget.py``). Each bucket waits by its own scope's
rule (``Bucket.max_wait``), in that one operation: a route's up to the route's ``max_wait``,
a virtual key's never. A key's rpm/tpm is its holder's own quota: going over it is the
caller's doing, answered at once with a 429 and ``Retry-After`` (as the providers answer),
rather than holding the request, and a server slot, open while the key's window drains. It
says nothing about the route's limit, which still waits for a key that has room of its own.

The limit must hold where it matters — at the upstream, which counts a call when it
*arrives*, some time after its admission here (the rest of the gateway's work, attachment
downloads, the network). A slot released exactly one window after its admission would let a
call admitted then arrive less than a window after an earlier one that was slow to leave:
the upstream would see more than ``rpm`` in some window. So a slot comes back one window
*plus a margin* after its admission (``[state] limit_margin_seconds``, default 1 s): as long
as a call reaches the upstream within the margin of its admission, no window at the
upstream ever holds more than the limit.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .._context import KeyPolicy
from .._errors import RateLimitExceeded
from .clock import Clock
from .config import Limit, LimitsConfig, RouteConfig
from .router import MAX_CACHED, ResolvedTarget
from .state import AnyBucket, Bucket, Grant, Lanes, StateBackend, flatten, new_lanes

WINDOW_SECONDS = 60.0
DEFAULT_MARGIN_SECONDS = 1.0
#: Plans kept per kind (routes, targets): worked out again after a clear, never grown without
#: bound; as many as the router keeps resolutions (a plan outliving its route's resolution
#: would only hold memory for a name no longer called)
MAX_PLANS = MAX_CACHED


@dataclass(slots=True)
class Reservation:
    ticket: str
    token_keys: tuple[str, ...]
    estimated_tokens: int


class RateLimiter:
    def __init__(self, limits: LimitsConfig, state: StateBackend, clock: Clock, *,
                 window: float = WINDOW_SECONDS, margin: float = DEFAULT_MARGIN_SECONDS) -> None:
        self._limits = limits
        self._state = state
        self._clock = clock
        #: how long an admission holds its slot: the limit's window plus the upstream margin
        self.window = window + margin
        # which buckets a route, a key or a target has, worked out once (the keys' text too)
        self._call_plans: dict[tuple[str, tuple[str, int | None, int | None] | None], _CallPlan] = {}
        self._target_plans: dict[tuple[str, str], _Plan] = {}
        #: some limit counts tokens (the quick test before :meth:`meters_tokens_of`)
        self.meters_tokens = any(limit is not None and limit.tpm
                                 for limit in (*limits.scoped.values(), *limits.named.values(), limits.default))

    # -- which buckets ----------------------------------------------------------------
    def call_buckets(self, route: RouteConfig, key: KeyPolicy | None,
                     tokens: int) -> tuple[list[AnyBucket], float, tuple[str, ...], bool]:
        """The call's route and key buckets for ``tokens`` (one two-lane bucket a scope,
        ``state.Lanes``), their ``max_wait``, the keys of those that count tokens (what
        settlement replaces with the reported usage) and whether one of them needs more than
        its whole limit (:func:`never_fits` words the refusal). What a (route, key) pair has is
        worked out once: per call only the buckets, with their tokens, are built."""
        signature = (route.name, None if key is None or not (key.rpm or key.tpm) else (key.key_id, key.rpm, key.tpm))
        plan = self._call_plans.get(signature)
        if plan is None or plan.route is not route:
            if len(self._call_plans) >= MAX_PLANS:   # implicit routes: one per model name a caller tries
                self._call_plans.clear()
            plan = self._call_plans[signature] = self._call_plan(route, key)
        if not plan.entries:
            return [], plan.max_wait, (), False
        buckets: list[AnyBucket] = [new_lanes((scope, rpm, tpm, tokens, wait, rpm_key, tpm_key))
                                    for scope, rpm, tpm, wait, rpm_key, tpm_key in plan.entries]
        return buckets, plan.max_wait, plan.token_keys, tokens > plan.token_room or plan.too_few_requests

    def _call_plan(self, route: RouteConfig, key: KeyPolicy | None) -> _CallPlan:
        limit = None if route.implicit else self._limits.for_scope("route", route.name)
        entries = _lanes(f"route:{route.name}", limit)
        max_wait = limit.max_wait if limit is not None else 0.0
        if key is not None and (key.rpm or key.tpm):   # its buckets never wait (Limit.max_wait 0)
            entries += _lanes(f"key:{key.key_id}", Limit(key.rpm, key.tpm, 0.0))
        return _CallPlan(route, entries, max_wait)

    def meters_tokens_of(self, token_keys: tuple[str, ...], targets: Sequence[ResolvedTarget]) -> bool:
        """Does a token limit count this call: its route's or key's (``token_keys``, from
        :meth:`call_buckets`) or a provider's or target's it may be sent to? Then its output must
        be capped at what it reserved (``Gateway._admit``), or its real usage could overrun the
        window. A tpm elsewhere does not cut this call's answer at the output estimate."""
        if token_keys:
            return True
        return self.meters_tokens and any(fixed is None for target in targets
                                           for _, _, _, fixed in self._target_plan(target)[0])

    def attempt_buckets(self, target: ResolvedTarget, tokens: int) -> tuple[list[Bucket], float]:
        # the cached plan looked up here: every attempt of every call asks
        entries, max_wait = self._target_plans.get((target.provider, target.key)) or self._target_plan(target)
        if not entries:
            return [], max_wait
        return [fixed or Bucket(k, limit, tokens, wait) for k, limit, wait, fixed in entries], max_wait

    def _target_plan(self, target: ResolvedTarget) -> _Plan:
        """A target's provider and target buckets, worked out once."""
        signature = (target.provider, target.key)
        plan = self._target_plans.get(signature)
        if plan is None:
            entries: tuple[_Entry, ...] = ()
            waits = []
            for scope, name in (("provider", target.provider), ("target", target.key)):
                limit = self._limits.for_scope(scope, name)
                if limit is not None:
                    entries += _plan(f"{scope}:{name}", limit)[0]
                    waits.append(limit.max_wait)
            if len(self._target_plans) >= MAX_PLANS:
                self._target_plans.clear()
            plan = self._target_plans[signature] = (entries, min(waits, default=0.0))
        return plan

    # -- taking and settling ----------------------------------------------------------
    async def acquire(self, buckets: Sequence[AnyBucket], max_wait: float) -> Reservation | None:
        """Take every bucket (waiting up to ``max_wait``) or raise RateLimitExceeded."""
        if not buckets:
            return None
        if (too_large := never_fits(buckets)) is not None:
            raise too_large
        grant = await self._state.take(buckets, self._clock.now(), max_wait, self.window)
        if not grant.granted:
            raise refused(grant)
        reservation = reservation_of(buckets, grant)
        assert reservation is not None
        if grant.wait > 0:
            try:
                await self._clock.sleep(grant.wait)
            except asyncio.CancelledError:
                await self._state.release(reservation.ticket)
                raise
        return reservation

    async def settle(self, reservation: Reservation | None, tokens_used: int | None,
                     freed: Sequence[str] = ()) -> None:
        """Replace the token estimate with what the provider reported (None: keep the estimate);
        ``freed``: keys given back whole (a cache hit's route buckets: :func:`upstream_keys`)."""
        if reservation is None:
            return
        amounts = {} if tokens_used is None else dict.fromkeys(reservation.token_keys, float(tokens_used))
        amounts.update(dict.fromkeys(freed, 0.0))
        await self._state.settle(reservation.ticket, amounts)

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            await self._state.release(reservation.ticket)


def upstream_keys(buckets: Sequence[AnyBucket]) -> tuple[str, ...]:
    """The keys of a call's buckets that protect the upstream: its route's (``route:NAME:rpm``,
    ``:tpm``). A response-cache hit never reaches the upstream and gives them back; a virtual
    key's buckets (``key:ID:...``) limit the client, and its requests count, hits included."""
    keys: list[str] = []
    for b in buckets:
        if isinstance(b, Lanes):
            if b.scope.startswith("route:"):
                keys += (b.requests_key, b.tokens_key)
        elif b.key.startswith("route:"):
            keys.append(b.key)
    return tuple(keys)


def never_fits(buckets: Sequence[AnyBucket], hint: str = "") -> RateLimitExceeded | None:
    """The error for a call that needs more than a whole limit (a tpm bucket smaller than its
    token estimate), or None. Refused before any state is touched: waiting for an empty window
    and letting it through would put more than the limit in that window at the upstream."""
    for b in flatten(buckets):
        if b.amount > b.limit:
            scope, _, kind = b.key.rpartition(":")
            return RateLimitExceeded(scope, kind, requested=b.amount, limit=b.limit, hint=hint)
    return None


def refused(grant: Grant) -> RateLimitExceeded:
    """The error for a grant that was refused."""
    scope, _, kind = (grant.limiting_key or "limit:?:rpm").rpartition(":")
    return RateLimitExceeded(scope, kind, retry_after=grant.wait)


def reservation_of(buckets: Sequence[AnyBucket], grant: Grant) -> Reservation | None:
    """What a granted ticket over ``buckets`` must settle later (None: it took nothing)."""
    if grant.ticket is None:
        return None
    buckets = flatten(buckets)
    token_keys = tuple([b.key for b in buckets if b.key.endswith(":tpm")])
    estimate = int(max([b.amount for b in buckets if b.key.endswith(":tpm")], default=0))
    return Reservation(grant.ticket, token_keys, estimate)


#: One bucket of a scope: (key, limit, its own max wait, the bucket itself when it takes one
#: request: the same for every call, so built once; None when it takes the call's tokens).
_Entry = tuple[str, float, float, Bucket | None]
#: A scope's buckets and its max wait.
_Plan = tuple[tuple[_Entry, ...], float]


#: One call-level scope's two-lane bucket less the call's tokens: (scope, rpm, tpm (math.inf:
#: none), its max wait, the rpm lane's key, the tpm lane's key).
_LanesEntry = tuple[str, float, float, float, str, str]


class _CallPlan:
    """A (route, key) pair's call-level buckets, worked out once: their entries (a two-lane
    bucket a scope) and ``max_wait``, the keys of the limited token lanes, and what a call must
    fit in — the smallest token limit, and whether some request limit is below one request."""

    __slots__ = ("route", "entries", "max_wait", "token_keys", "token_room", "too_few_requests")

    def __init__(self, route: RouteConfig, entries: tuple[_LanesEntry, ...], max_wait: float) -> None:
        self.route = route
        self.entries = entries
        self.max_wait = max_wait
        self.token_keys = tuple([tpm_key for _, _, tpm, _, _, tpm_key in entries if tpm != math.inf])
        self.token_room = min([tpm for _, _, tpm, _, _, _ in entries], default=math.inf)
        self.too_few_requests = any(rpm < 1.0 for _, rpm, _, _, _, _ in entries)


def _lanes(scope: str, limit: Limit | None) -> tuple[_LanesEntry, ...]:
    """A call-level scope's two-lane bucket, when it has a limit (a lane it does not limit is
    ``math.inf``)."""
    if limit is None or not (limit.rpm or limit.tpm):
        return ()
    return ((scope, float(limit.rpm) if limit.rpm else math.inf, float(limit.tpm) if limit.tpm else math.inf,
             limit.max_wait, f"{scope}:rpm", f"{scope}:tpm"),)


def _plan(scope: str, limit: Limit | None) -> _Plan:
    if limit is None:
        return (), 0.0
    wait = limit.max_wait
    entries: tuple[_Entry, ...] = ()
    if limit.rpm:
        key = f"{scope}:rpm"
        entries += ((key, float(limit.rpm), wait, Bucket(key, float(limit.rpm), 1.0, wait)),)
    if limit.tpm:
        entries += ((f"{scope}:tpm", float(limit.tpm), wait, None),)
    return entries, wait
