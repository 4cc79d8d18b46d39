"""Rolling-window admission: the arithmetic behind every rpm/tpm limit.

A classic token bucket of capacity C refilling C per minute lets up to 2C through in one
rolling minute (a full bucket, then a minute of refill). We promise more: never more than
the limit in *any* 60-second window. So each admission is logged with its time, and the
tokens it took come back exactly one window later — a token bucket whose tokens return
one minute after they were spent.

Admissions are placed in time order: a call that must wait is given a slot at a future
time (its tokens are reserved there), so concurrent waiters queue fairly and a slot, once
granted, stays valid. A call that fits in the window when it asks never waits, even when the
log already holds a later time (a queued slot, or a caller whose clock read came a moment
later but reached the state first): it is logged at that later time, which keeps the order.
A :class:`Log` keeps its running total, so admitting a call is O(1) however busy the window
(only a call that must wait walks the log). Backends supply the atomicity.

In memory, admissions close together in time share one entry (a *slot*, at most ``window /
SLOTS`` wide: 0.1 s of a minute). At 1,000 calls a second and four limits per call, an entry per admission
held a quarter of a million objects — 30 MiB and long garbage-collector passes — where slots
hold at most 2,400. A slot's tokens come back one window after its *newest* admission, so an
older admission in it returns up to one slot width late: a limit may admit a little later than
it could, never more than it should. (Redis keeps one list entry per admission: its memory is
Redis', and its scripts are held to the exact arithmetic, ``slots=0`` here, by the contract suite.)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

_EPSILON = 1e-9

#: Slots per window: admissions less than ``window / SLOTS`` apart share one log entry.
SLOTS = 600


@dataclass(slots=True)
class Entry:
    """One slot of admissions: their summed amount, returned one window after ``at``."""

    at: float              # the newest admission in the slot
    start: float           # the oldest (a slot never spans more than window / SLOTS)
    amount: float
    live: bool = True      # still in its log (not yet returned by ``prune``)


class Log:
    """One key's admissions in time order, with the sum of their amounts."""

    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque()
        self.total = 0.0

    def prune(self, now: float, window: float) -> None:
        """Drop admissions whose tokens have come back (older than one window)."""
        entries = self.entries
        while entries and entries[0].at + window <= now:
            gone = entries.popleft()
            gone.live = False
            self.total -= gone.amount
        if not entries:
            self.total = 0.0

    def earliest(self, limit: float, amount: float, now: float, window: float) -> tuple[float, float]:
        """When ``amount`` may go (>= now) and where it is logged (>= that, and >= the last
        admission, so the log stays in time order); admissions whose tokens have come back are
        dropped first (:meth:`prune`, done here: every admission asks this once per bucket).

        An amount that fits in the window now goes now, even when the log's newest admission
        is later (a waiter's future slot, or a call whose ``now`` was read a moment later and
        reached the state first — over Redis, concurrent callers' round trips do not keep the
        order of their clock reads): it is logged at that admission's time, which only holds its
        slot a little longer (the window's total counts it from now either way), and never makes
        it wait. One that does not fit waits behind every admission already logged, so queued
        waiters keep their order. An amount larger than the whole limit is treated as the whole
        limit: it waits for an empty window rather than never passing (the gateway refuses such a
        call before it gets here, ``ratelimit.never_fits``; this keeps the arithmetic total).
        """
        entries = self.entries
        if entries and entries[0].at + window <= now:
            self.prune(now, window)
        if not entries:
            return now, now                # an empty window admits up to the whole limit
        if amount > limit:
            amount = limit
        newest = entries[-1].at
        base = newest if newest > now else now
        remaining = self.total
        if remaining + amount <= limit:   # exact here, tolerant below: the Redis scripts do the same
            return now, base
        for e in entries:
            remaining -= e.amount
            if remaining + amount <= limit + _EPSILON:
                at = e.at + window
                if at < base:
                    at = base
                return at, at
        return base, base  # unreachable: an empty log always admits amount <= limit

    def add(self, at: float, amount: float, width: float) -> Entry:
        """Log ``amount`` at ``at`` (>= the newest admission, as :meth:`earliest` places it),
        in the newest slot when that is less than ``width`` old (0: every admission its own);
        returns the slot, which the caller keeps (with its own amount) to change what it took."""
        entries = self.entries
        self.total += amount
        if entries:
            last = entries[-1]
            if at - last.start < width:
                if at > last.at:
                    last.at = at
                last.amount += amount
                return last
        entry = Entry(at, at, amount)
        entries.append(entry)
        return entry

    def set_amount(self, entry: Entry, took: float, amount: float) -> None:
        """Change what one admission in ``entry`` took from ``took`` to ``amount`` (reconcile an
        estimate; 0 gives it back)."""
        new = entry.amount + amount - took
        if new < 0.0:
            new = 0.0
        if entry.live:
            self.total += new - entry.amount
        entry.amount = new

    def used(self, now: float, window: float) -> float:
        return sum(e.amount for e in self.entries if now - window < e.at <= now)


@dataclass(slots=True)
class PairEntry:
    """One slot of a two-lane window (``base.Lanes``): its requests and tokens, returned one
    window after ``at``."""

    at: float
    start: float
    requests: float
    tokens: float
    live: bool = True


class PairLog:
    """A scope's request and token windows as one log (``base.Lanes``): the two always take
    their amounts at the same time, so one list of slots with two running totals answers both
    — one walk, one slot and one ticket entry a call where two logs took two. The arithmetic
    is :class:`Log`'s, lane by lane."""

    __slots__ = ("entries", "requests", "tokens", "lanes")

    def __init__(self) -> None:
        self.entries: deque[PairEntry] = deque()
        self.requests = 0.0
        self.tokens = 0.0
        #: each lane seen as a :class:`Log`-like thing, for tickets kept per bucket key
        self.lanes = (_Lane(self, False), _Lane(self, True))

    def prune(self, now: float, window: float) -> None:
        """:meth:`Log.prune`, both lanes."""
        entries = self.entries
        while entries and entries[0].at + window <= now:
            gone = entries.popleft()
            gone.live = False
            self.requests -= gone.requests
            self.tokens -= gone.tokens
        if not entries:
            self.requests = self.tokens = 0.0

    def earliest(self, requests_limit: float, tokens_limit: float, tokens: float, now: float,
                 window: float) -> tuple[float, float, float]:
        """:meth:`Log.earliest` for one request and ``tokens`` at once: when the request lane
        lets the call go, when the token lane does, and where it is logged (no earlier than
        either, nor than the newest admission). One walk finds both: each lane's remaining
        total only falls as the walk drops older slots."""
        entries = self.entries
        if entries and entries[0].at + window <= now:
            self.prune(now, window)
        if not entries:
            return now, now, now
        requests = 1.0 if requests_limit >= 1.0 else requests_limit
        if tokens > tokens_limit:
            tokens = tokens_limit
        newest = entries[-1].at
        base = newest if newest > now else now
        left_r, left_t = self.requests, self.tokens
        go_r = now if left_r + requests <= requests_limit else -1.0   # exact here, tolerant below
        go_t = now if left_t + tokens <= tokens_limit else -1.0
        if go_r < 0.0 or go_t < 0.0:
            for e in entries:
                left_r -= e.requests
                left_t -= e.tokens
                at = e.at + window
                if at < base:
                    at = base
                if go_r < 0.0 and left_r + requests <= requests_limit + _EPSILON:
                    go_r = at
                if go_t < 0.0 and left_t + tokens <= tokens_limit + _EPSILON:
                    go_t = at
                if go_r >= 0.0 and go_t >= 0.0:
                    break
            else:   # unreachable: an empty window admits amounts within the limits
                go_r = go_r if go_r >= 0.0 else base
                go_t = go_t if go_t >= 0.0 else base
        place = base if go_r <= base and go_t <= base else (go_r if go_r > go_t else go_t)
        return go_r, go_t, place

    def add(self, at: float, requests: float, tokens: float, width: float) -> PairEntry:
        """:meth:`Log.add`, both lanes in one slot."""
        entries = self.entries
        self.requests += requests
        self.tokens += tokens
        if entries:
            last = entries[-1]
            if at - last.start < width:
                if at > last.at:
                    last.at = at
                last.requests += requests
                last.tokens += tokens
                return last
        entry = PairEntry(at, at, requests, tokens)
        entries.append(entry)
        return entry

    def set_amounts(self, entry: PairEntry, took_requests: float, requests: float, took_tokens: float,
                    tokens: float) -> None:
        """:meth:`Log.set_amount`, both lanes: what one admission in ``entry`` took becomes
        ``requests`` and ``tokens``."""
        new_r = entry.requests + requests - took_requests
        new_t = entry.tokens + tokens - took_tokens
        if new_r < 0.0:
            new_r = 0.0
        if new_t < 0.0:
            new_t = 0.0
        if entry.live:
            self.requests += new_r - entry.requests
            self.tokens += new_t - entry.tokens
        entry.requests, entry.tokens = new_r, new_t

    def used(self, now: float, window: float, tokens: bool) -> float:
        return sum(e.tokens if tokens else e.requests for e in self.entries if now - window < e.at <= now)


class _Lane:
    """One lane of a :class:`PairLog`, with :class:`Log`'s ``set_amount`` (a ticket that keeps
    its entries by bucket key settles a lane the way it settles a log)."""

    __slots__ = ("log", "tokens")

    def __init__(self, log: PairLog, tokens: bool) -> None:
        self.log = log
        self.tokens = tokens

    def set_amount(self, entry: PairEntry, took: float, amount: float) -> None:
        if self.tokens:
            self.log.set_amounts(entry, 0.0, 0.0, took, amount)
        else:
            self.log.set_amounts(entry, took, amount, 0.0, 0.0)
