"""The in-process state backend: dicts behind one lock.

Per process: two server workers each enforce the full limit. The lock is a threading lock,
held for microseconds and never across an ``await``, because the same state is used by
async callers on their own loop and by the sync Client's private loop thread.

A forked child (multiprocessing's ``fork``, gunicorn ``--preload``, celery's prefork pool) is a
process of its own like any other: it starts from a copy of the parent's counters at the fork
and counts its own calls from there, as the parent counts its own (README: several processes
share limits and budgets only through ``[state] url = "redis://..."``). Its lock is a new one:
the sync Client's loop thread may have held the parent's at the fork, and in the child, where
that thread does not exist, it would never be let go.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from ..breaker import BreakerDecision, BreakerPolicy, BreakerSnapshot, on_abandon, on_acquire, on_result
from .base import LATENCY_ALPHA, Admission, AnyBucket, AttemptAdmission, AttemptAsk, Grant, Hold, Lanes, StateBackend
from .window import SLOTS, Entry, Log, PairEntry, PairLog

_EPSILON = 1e-12
#: A two-lane bucket's lane without a limit (``base.Lanes``). It takes nothing of its window, as
#: it is no bucket in Redis nor was one before the lanes: its tokens are never settled (only
#: limited lanes' are, ``RateLimiter.call_buckets``' token keys), so a tpm given to the scope
#: later would have counted a minute of unsettled estimates (``max_tokens`` and all) and refused
#: a key whose calls had used a few tokens; and an rpm given later starts empty there too.
_NO_LIMIT = math.inf


_ALLOWED = BreakerDecision(True)
_CLOSED = BreakerSnapshot()
#: Targets (breakers, latency averages) and limit windows kept before the idle ones are let go:
#: callers allowed "provider/*" name a new target with every model name they try.
MAX_TRACKED = 10_000


class _Budget:
    """One budget counter: settled spend and open reservations (dollars)."""

    __slots__ = ("spent", "reserved")

    def __init__(self, spent: float) -> None:
        self.spent = spent
        self.reserved = 0.0


#: What a ticket holds of one two-lane bucket: its lanes' keys, its log and slot, and what it
#: took of each lane
_PairTaken = tuple[str, str, PairLog, PairEntry, float, float]
#: What :meth:`MemoryState._earliest` found for one two-lane bucket: its keys, its log, what it takes
_PairTaking = tuple[str, str, PairLog, float, float]


class _CallTicket:
    """What one :meth:`MemoryState.admit` took: window entries (single buckets', two-lane
    ones') and budget reservations."""

    __slots__ = ("entries", "pairs", "holds")

    def __init__(self, entries: list[tuple[str, Log, Entry, float]], pairs: list[_PairTaken],
                 holds: list[tuple[_Budget, float]]) -> None:
        self.entries = entries
        self.pairs = pairs
        self.holds = holds


class MemoryState(StateBackend):
    shared = False

    def __init__(self, slots: int = SLOTS) -> None:
        """``slots``: admissions less than ``window / slots`` apart share one log entry, which
        bounds memory however busy a limit is (``window.py``); 0 logs each one (exact waits)."""
        self._slots = slots
        self._lock = threading.Lock()
        if hasattr(os, "register_at_fork"):   # not on Windows, which has no fork
            me = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _renew_lock(me))
        self._logs: dict[str, Log] = {}
        #: two-lane windows (``base.Lanes``), by scope
        self._pairs: dict[str, PairLog] = {}
        self._tickets: dict[str, dict[str, tuple[Any, Any, float]]] = {}
        self._breakers: dict[str, BreakerSnapshot] = {}
        #: when each breaker that is not clean stops mattering (:func:`_stale_at`); a clean one's
        #: value, if left over, is ignored
        self._stale: dict[str, float] = {}
        self._latency: dict[str, float] = {}
        self._budgets: dict[str, _Budget] = {}
        self._ids = itertools.count(1)
        self._trim_at = MAX_TRACKED   # windows held at which idle ones are let go
        self._breaker_trim_at = MAX_TRACKED   # breakers held at which those that no longer matter are

    async def take(self, buckets: Sequence[AnyBucket], now: float, max_wait: float, window: float = 60.0) -> Grant:
        with self._lock:
            if len(self._logs) + len(self._pairs) >= self._trim_at:
                self._forget_idle(now, window)
            return self._take(buckets, now, max_wait, window, now, now)

    def _earliest(self, buckets: Sequence[AnyBucket], now: float, window: float, go: float, at: float
                  ) -> tuple[float, float, str | None, list[tuple[str, Log, float]], list[_PairTaking], Grant | None]:
        """Under the lock: when every bucket lets the call go (no earlier than ``go``), where it
        is logged (no earlier than ``at``), the bucket that set the wait, each bucket's ``(key,
        log, amount it takes)``, and the refusal of the first bucket that alone would make the
        call wait longer than its own ``max_wait`` past ``go`` (a first attempt's bucket only
        counts the wait it adds to its call's: the call sleeps its own wait anyway).

        Every caller's ``go`` is ``now`` or later, and every ``max_wait`` 0 or more. A bucket
        whose log has room now and nothing due back (every call of a limit that is not reached)
        is answered here, without :meth:`Log.earliest`: it goes at ``now`` (so sets no wait and
        refuses nothing) and is logged no earlier than its newest admission — that method's
        first answer, without a method call per bucket. A two-lane bucket (``Lanes``) is both of
        its lanes at once: its request lane first, as its two buckets would be taken. A lane
        without a limit takes nothing (it stands for no bucket): see :data:`_NO_LIMIT`."""
        after = go
        limiting = None
        over = None
        taking: list[tuple[str, Log, float]] = []
        pairs: list[_PairTaking] = []
        all_logs = self._logs
        for b in buckets:
            if isinstance(b, Lanes):
                scope, requests_limit, tokens_limit, tokens, bucket_wait, requests_key, tokens_key = b
                pair = self._pairs.get(scope)
                if pair is None:
                    pair = self._pairs[scope] = PairLog()
                slots = pair.entries
                if (slots and slots[0].at + window > now and pair.requests + 1.0 <= requests_limit
                        and pair.tokens + tokens <= tokens_limit):
                    newest = slots[-1].at
                    if newest > at:
                        at = newest
                    pairs.append((requests_key, tokens_key, pair, 0.0 if requests_limit == _NO_LIMIT else 1.0,
                                  0.0 if tokens_limit == _NO_LIMIT else tokens))
                    continue
                t_r, t_t, place = pair.earliest(requests_limit, tokens_limit, tokens, now, window)
                if t_r > go:
                    go, limiting = t_r, requests_key
                if t_t > go:
                    go, limiting = t_t, tokens_key
                if place > at:
                    at = place
                if over is None:
                    if t_r - after > bucket_wait:
                        over = Grant(False, t_r - now, None, requests_key)
                    elif t_t - after > bucket_wait:
                        over = Grant(False, t_t - now, None, tokens_key)
                pairs.append((requests_key, tokens_key, pair,
                              0.0 if requests_limit == _NO_LIMIT else 1.0 if requests_limit >= 1.0 else requests_limit,
                              0.0 if tokens_limit == _NO_LIMIT else tokens if tokens < tokens_limit else tokens_limit))
                continue
            key, limit, amount, bucket_wait = b
            log = all_logs.get(key)
            if log is None:
                log = all_logs[key] = Log()
            entries = log.entries
            if entries and entries[0].at + window > now and log.total + amount <= limit:
                newest = entries[-1].at
                if newest > at:
                    at = newest
                taking.append((key, log, amount if amount < limit else limit))
                continue
            t, place = log.earliest(limit, amount, now, window)
            if t > go:
                go, limiting = t, key
            if place > at:
                at = place
            if t - after > bucket_wait and over is None:
                over = Grant(False, t - now, None, key)
            taking.append((key, log, amount if amount < limit else limit))
        return go, at, limiting, taking, pairs, over

    def _take(self, buckets: Sequence[AnyBucket], now: float, max_wait: float, window: float, after: float,
              place_after: float) -> Grant:
        """``take`` under the lock, going no earlier than ``after`` and logged no earlier than
        ``place_after``. ``max_wait`` bounds the wait beyond ``after`` (the call's own, for its
        first attempt); the grant's ``wait`` counts from ``now``."""
        go, at, limiting, taking, pairs, over = self._earliest(buckets, now, window, after, place_after)
        wait = go - now
        if go - after > max_wait:
            return Grant(False, wait, None, limiting)
        if over is not None:
            return over
        ticket = f"t{next(self._ids)}"
        width = window / self._slots if self._slots else 0.0
        held: dict[str, tuple[Any, Any, float]] = {
            key: (log, entry, took) for key, log, entry, took in _log_all(taking, at, width)}
        for requests_key, tokens_key, pair, slot, took_r, took_t in _log_pairs(pairs, at, width):
            held[requests_key] = (pair.lanes[0], slot, took_r)
            held[tokens_key] = (pair.lanes[1], slot, took_t)
        self._tickets[ticket] = held
        return Grant(True, wait, ticket, limiting, at)

    async def admit(self, buckets: Sequence[AnyBucket], holds: Sequence[Hold], now: float, max_wait: float,
                    window: float = 60.0, attempt: AttemptAsk | None = None) -> Admission:
        with self._lock:
            if len(self._logs) + len(self._pairs) >= self._trim_at or len(self._breakers) >= self._breaker_trim_at:
                self._forget_idle(now, window)
            budgets = self._budgets
            taken = []
            short = None    # the first hold with no room (refused only once the buckets have room)
            for key, limit, amount in holds:
                rec = budgets.get(key)
                if rec is None:
                    return Admission(False, unseeded=tuple([h.key for h in holds if h.key not in budgets]))
                if short is None and rec.spent + rec.reserved + amount > limit + _EPSILON:
                    short = Admission(False, 0.0, None, key, rec.spent, rec.reserved)
                taken.append((rec, amount))
            go, at, limiting, taking, pairs, over = self._earliest(buckets, now, window, now, now)
            wait = go - now
            if wait > max_wait:
                return Admission(False, wait, None, limiting)
            if over is not None:
                return Admission(False, over.wait, None, over.limiting_key)
            if short is not None:
                return short
            for rec, amount in taken:
                rec.reserved += amount
            width = window / self._slots if self._slots else 0.0
            entries = _log_all(taking, at, width) if taking else []
            paired = _log_pairs(pairs, at, width) if pairs else []
            first = None if attempt is None else self._admit_attempt(attempt, now, window, go, at)
            return Admission(True, wait, _CallTicket(entries, paired, taken), limiting, attempt=first)

    def _admit_attempt(self, ask: AttemptAsk, now: float, window: float, after: float,
                       place_after: float) -> AttemptAdmission:
        breakers = self._breakers
        snap = breakers.get(ask.key)
        if snap is None or snap.state == "closed" or not ask.policy.enabled:
            decision = _ALLOWED
            if snap is None:
                breakers[ask.key] = _CLOSED
        else:
            snap, decision = on_acquire(snap, now, ask.policy)
            breakers[ask.key] = snap
            self._stale[ask.key] = _stale_at(snap, now, ask.policy)
            if not decision.allowed:
                return AttemptAdmission(decision)
        if not ask.buckets:
            return AttemptAdmission(decision, Grant(True, after - now, None, None, place_after))
        grant = self._take(ask.buckets, now, ask.max_wait, window, after, place_after)
        if not grant.granted and decision.probe:
            breakers[ask.key] = on_abandon(breakers[ask.key])
        return AttemptAdmission(decision, grant)

    async def close(self, ticket: object, amounts: Mapping[str, float] | None, cost: float,
                    costs: Sequence[float] | None = None) -> None:
        if not isinstance(ticket, _CallTicket):
            return
        with self._lock:
            _close(ticket, amounts, cost, costs)

    async def finish(self, ticket: object, amounts: Mapping[str, float], cost: float, attempt_ticket: str | None,
                     attempt_amounts: Mapping[str, float], target: str, now: float, policy: BreakerPolicy,
                     latency_ms: float, costs: Sequence[float] | None = None) -> None:
        """The base class's four steps under one lock acquisition (every successful call ends here)."""
        with self._lock:
            if isinstance(ticket, _CallTicket):
                _close(ticket, amounts, cost, costs)
            if attempt_ticket is not None:
                self._settle(attempt_ticket, attempt_amounts)
            self._breakers[target] = on_result(self._breakers.get(target, _CLOSED), True, now, policy)
            self._fold_latency(target, latency_ms, LATENCY_ALPHA)

    async def budget_seed(self, key: str, spent: float) -> None:
        with self._lock:
            if key not in self._budgets:
                self._budgets[key] = _Budget(spent)

    async def budget_raise(self, key: str, spent: float) -> None:
        with self._lock:
            rec = self._budgets.get(key)
            if rec is None:
                self._budgets[key] = _Budget(spent)
            elif spent > rec.spent:
                rec.spent = spent

    async def budget_usage(self, key: str) -> tuple[float, float] | None:
        with self._lock:
            rec = self._budgets.get(key)
            return None if rec is None else (rec.spent, rec.reserved)

    async def settle(self, ticket: str, amounts: Mapping[str, float]) -> None:
        with self._lock:
            self._settle(ticket, amounts)

    def _settle(self, ticket: str, amounts: Mapping[str, float]) -> None:
        entries = self._tickets.pop(ticket, {})
        for key, amount in amounts.items():
            if key in entries:
                log, entry, took = entries[key]
                log.set_amount(entry, took, max(0.0, amount))

    async def release(self, ticket: str) -> None:
        with self._lock:
            for log, entry, took in self._tickets.pop(ticket, {}).values():
                log.set_amount(entry, took, 0.0)

    async def usage(self, key: str, now: float, window: float = 60.0) -> float:
        """A two-lane window answers for its lanes' keys (``route:smart:rpm``, ``...:tpm``)."""
        with self._lock:
            log = self._logs.get(key)
            used = log.used(now, window) if log is not None else 0.0
            scope, _, kind = key.rpartition(":")
            pair = self._pairs.get(scope) if kind in ("rpm", "tpm") else None
            return used + pair.used(now, window, kind == "tpm") if pair is not None else used

    async def breaker_acquire(self, key: str, now: float, policy: BreakerPolicy) -> BreakerDecision:
        with self._lock:
            snap, decision = on_acquire(self._breakers.get(key, BreakerSnapshot()), now, policy)
            self._breakers[key] = snap
            if snap.state != "closed":
                self._stale[key] = _stale_at(snap, now, policy)
            return decision

    async def breaker_record(self, key: str, ok: bool, now: float, policy: BreakerPolicy,
                             error: str | None = None, probe: bool = False,
                             retry_after: float | None = None) -> BreakerSnapshot:
        with self._lock:
            if len(self._breakers) >= self._breaker_trim_at and key not in self._breakers:
                self._forget_breakers(now)
            snap = on_result(self._breakers.get(key, BreakerSnapshot()), ok, now, policy, error, probe, retry_after)
            self._breakers[key] = snap
            if snap.state != "closed" or snap.consecutive_failures:
                self._stale[key] = _stale_at(snap, now, policy)
            return snap

    async def breaker_abandon(self, key: str) -> None:
        with self._lock:
            if key in self._breakers:
                self._breakers[key] = on_abandon(self._breakers[key])

    async def breaker_snapshots(self) -> dict[str, BreakerSnapshot]:
        with self._lock:
            return dict(self._breakers)

    async def record_latency(self, key: str, latency_ms: float, alpha: float = LATENCY_ALPHA) -> None:
        with self._lock:
            self._fold_latency(key, latency_ms, alpha)

    def _fold_latency(self, key: str, latency_ms: float, alpha: float) -> None:
        old = self._latency.get(key)
        if old is None and len(self._latency) >= MAX_TRACKED:
            self._latency.clear()   # averages only steer routing, which relearns them
        self._latency[key] = latency_ms if old is None else alpha * latency_ms + (1 - alpha) * old

    def _forget_idle(self, now: float, window: float) -> None:
        """Under the lock, before an operation takes any log, once ``MAX_TRACKED`` targets or
        windows are held: drop what carries no state worth keeping — breakers that no longer
        change what a call gets (:meth:`_forget_breakers`) and windows with nothing left in them."""
        self._forget_breakers(now)
        kept = {}
        for key, log in self._logs.items():
            log.prune(now, window)
            if log.entries:
                kept[key] = log
        self._logs = kept
        pairs = {}
        for key, pair in self._pairs.items():
            pair.prune(now, window)
            if pair.entries:
                pairs[key] = pair
        self._pairs = pairs
        # when most of them are live, the next look waits until there are twice as many: a
        # walk over every table on every call would make admission cost grow with the tables
        self._trim_at = max(MAX_TRACKED, 2 * (len(kept) + len(pairs)))

    def _forget_breakers(self, now: float) -> None:
        """Under the lock: drop the breakers a target never seen would behave the same as —
        closed with no failures, open past their cooldown, failing-but-closed whose last failure
        is a cooldown old (their next call starts afresh, as the probe would), a probe that
        never reported back — and keep at most ``MAX_TRACKED`` (callers allowed "provider/*"
        fail a new name at a time while an upstream is down): beyond that the ones nearest to
        mattering no more go first, failing-but-closed before open."""
        stale = self._stale
        kept = {k: s for k, s in self._breakers.items()
                if (s.state != "closed" or s.consecutive_failures) and stale.get(k, now) > now}
        if len(kept) > MAX_TRACKED:
            order = sorted(kept, key=lambda k: (kept[k].state != "closed", stale.get(k, now)))
            for k in order[:len(kept) - MAX_TRACKED]:
                del kept[k]
        self._breakers = kept
        self._stale = {k: stale[k] for k in kept if k in stale}
        self._breaker_trim_at = max(MAX_TRACKED, 2 * len(kept))

    async def latencies(self, keys: Sequence[str]) -> dict[str, float]:
        with self._lock:
            return {k: self._latency[k] for k in keys if k in self._latency}


def _stale_at(snap: BreakerSnapshot, now: float, policy: BreakerPolicy) -> float:
    """When a breaker that is not clean stops mattering: an open one once its cooldown has
    passed (its next call would be a probe), a half-open one once its probe has had its time,
    a failing-but-closed one a cooldown after its last failure (``now``)."""
    if snap.state == "open":
        return (snap.opened_at if snap.opened_at is not None else now) + snap.cooldown(policy)
    if snap.state == "half_open":
        return (snap.probe_started_at if snap.probe_started_at is not None else now) + policy.probe_timeout_seconds
    return now + snap.cooldown(policy)


def _log_all(taking: list[tuple[str, Log, float]], at: float, width: float) -> list[tuple[str, Log, Entry, float]]:
    """Log what each bucket takes at ``at`` (under the lock, once all of them have room): the
    ticket's entries, ``(key, log, slot, amount taken)``. The usual case — the newest slot is
    less than ``width`` old and takes the amount — is :meth:`Log.add`'s first branch, written
    out here: it runs for every bucket of every call."""
    entries = []
    for key, log, took in taking:
        slots = log.entries
        last = slots[-1] if slots else None
        if last is not None and at - last.start < width:
            log.total += took
            if at > last.at:
                last.at = at
            last.amount += took
            entries.append((key, log, last, took))
        else:
            entries.append((key, log, log.add(at, took, width), took))
    return entries


def _log_pairs(pairs: list[_PairTaking], at: float, width: float) -> list[_PairTaken]:
    """:func:`_log_all` for two-lane buckets: both lanes in the pair's newest slot (the usual
    case, :meth:`PairLog.add`'s first branch written out) or a new one."""
    taken = []
    for requests_key, tokens_key, pair, took_r, took_t in pairs:
        slots = pair.entries
        last = slots[-1] if slots else None
        if last is not None and at - last.start < width:
            pair.requests += took_r
            pair.tokens += took_t
            if at > last.at:
                last.at = at
            last.requests += took_r
            last.tokens += took_t
            taken.append((requests_key, tokens_key, pair, last, took_r, took_t))
        else:
            taken.append((requests_key, tokens_key, pair, pair.add(at, took_r, took_t, width), took_r, took_t))
    return taken


def _close(ticket: _CallTicket, amounts: Mapping[str, float] | None, cost: float,
           costs: Sequence[float] | None) -> None:
    """:meth:`MemoryState.close` under the lock: settle or give back the buckets, turn the
    holds into spend (``costs``: each hold's own, else ``cost`` for all); a ticket is
    emptied, so closing it twice does nothing."""
    entries, pairs, holds = ticket.entries, ticket.pairs, ticket.holds
    ticket.entries, ticket.pairs, ticket.holds = [], [], []
    if amounts is None:
        for _, log, entry, took in entries:
            log.set_amount(entry, took, 0.0)
        for _, _, pair, slot, took_r, took_t in pairs:
            pair.set_amounts(slot, took_r, 0.0, took_t, 0.0)
    elif amounts:
        for key, log, entry, took in entries:
            amount = amounts.get(key)
            if amount is not None:
                log.set_amount(entry, took, amount if amount > 0.0 else 0.0)
        for requests_key, tokens_key, pair, slot, took_r, took_t in pairs:
            tokens = amounts.get(tokens_key)
            requests = amounts.get(requests_key)
            if requests is None:
                if tokens is not None:   # the usual case, the reported usage: PairLog.set_amounts written out
                    new = slot.tokens + (tokens if tokens > 0.0 else 0.0) - took_t
                    if new < 0.0:
                        new = 0.0
                    if slot.live:
                        pair.tokens += new - slot.tokens
                    slot.tokens = new
            else:
                pair.set_amounts(slot, took_r, requests if requests > 0.0 else 0.0,
                                 took_t, took_t if tokens is None else tokens if tokens > 0.0 else 0.0)
    if costs is not None and holds:   # (a ticket closed before has none left)
        for (rec, amount), charged in zip(holds, costs, strict=True):
            reserved = rec.reserved - amount
            rec.reserved = reserved if reserved > 0.0 else 0.0
            rec.spent += charged
        return
    for rec, amount in holds:
        reserved = rec.reserved - amount
        rec.reserved = reserved if reserved > 0.0 else 0.0
        rec.spent += cost


def _renew_lock(ref: weakref.ref[MemoryState]) -> None:
    """In a forked child: a lock of its own (see the module's docstring)."""
    state = ref()
    if state is not None:
        state._lock = threading.Lock()
