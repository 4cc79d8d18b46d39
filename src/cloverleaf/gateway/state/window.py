"""Rolling-window admission: the arithmetic behind every rpm/tpm limit.

A classic token bucket of capacity C refilling C per minute lets up to 2C through in one
rolling minute (a full bucket, then a minute of refill). We promise more: never more than
the limit in *any* 60-second window. So each admission is logged with its time, and the
tokens it took come back exactly one window later — a token bucket whose tokens return
one minute after they were spent.

Admissions are placed in time order: a call that must wait is given a slot at a future
time (its tokens are reserved there), so concurrent waiters queue fairly and a slot, once
granted, stays valid. Pure functions over a list; backends supply the atomicity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class Entry:
    at: float
    amount: float
    ticket: str


def prune(entries: list[Entry], now: float, window: float) -> None:
    """Drop admissions whose tokens have come back (older than one window)."""
    drop = 0
    while drop < len(entries) and entries[drop].at + window <= now:
        drop += 1
    if drop:
        del entries[:drop]


def earliest(entries: Sequence[Entry], limit: float, amount: float, now: float, window: float) -> float:
    """The earliest time >= now (and >= the last admission) at which ``amount`` fits.

    An amount larger than the whole limit is treated as the whole limit: it waits for an
    empty window rather than never passing.
    """
    amount = min(amount, limit)
    base = max(now, entries[-1].at) if entries else now
    remaining = sum(e.amount for e in entries)
    if remaining + amount <= limit:
        return base
    for e in entries:
        remaining -= e.amount
        if remaining + amount <= limit + 1e-9:
            return max(base, e.at + window)
    return base  # unreachable: an empty log always admits amount <= limit


def used(entries: Sequence[Entry], now: float, window: float) -> float:
    return sum(e.amount for e in entries if now - window < e.at <= now)
