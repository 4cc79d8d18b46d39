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
