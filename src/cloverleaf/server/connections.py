"""Connection abuse: header timeout, keep-alive idle timeout, a connection cap, file descriptors.

Why: a server that waits forever for a request head can be held by anyone who opens
sockets and sends nothing (or a byte every few seconds: slowloris). Measured before this
module existed, 400 such connections were held for 75 s, and 1,100 idle sockets against a
1,024 file limit made every normal request fail (``accept`` hits ``EMFILE``) until they went
away. The rules, enforced by :class:`ConnectionGuard` for the ``h1`` server protocol:

- **header timeout** (``[server] header_timeout_seconds``, 10 s): from the moment a
  connection opens, or the first byte of its next request, the whole request head must
  arrive within this, else the connection is closed;
- **keep-alive idle timeout** (``keepalive_timeout_seconds``, 5 s): a connection with no
  request in progress and no byte received is closed after this;
- **write timeout** (``write_timeout_seconds``, 30 s): a response waiting for the client to
  read (the transport's buffer full, ``send`` paused) must make progress within this, else
  the connection is aborted (not closed: a close waits for the buffer to drain) and the
  request's work is cancelled as for a hang-up. A client that sends requests and never reads
  the answers held its connection, and a stream's upstream call, for ever: with a request
  in progress the connection had no deadline, so it was neither swept nor evicted. A
  finished answer still being sent is under this timeout too, not the idle one: the idle
  countdown starts when the last byte has left the buffer (it cut large answers off);
- **connection cap** (``max_connections``, 10,000, and never more than half the file
  descriptors left after a reserve, since every busy client connection may hold an upstream
  socket too): at the cap, a new connection first *evicts* the connection that has been
  idle (or stuck in its request head) the longest, counted from its last answer or its
  opening, so idle and slowloris connections
  cannot crowd out real clients; only when every connection has a request in progress or
  output still to send is the newcomer answered ``503`` with ``Retry-After`` and closed;
- **file descriptors**: :func:`raise_nofile_limit` lifts the soft ``RLIMIT_NOFILE`` to the
  hard limit at start-up (the soft default of 1,024 is far below what a gateway needs).

The deadlines are not timers: each connection keeps one ``deadline`` float (``None`` while a
request is in progress, unless it waits to write) and one sweep a second closes the expired
ones, so a request costs two attribute writes, not a timer armed and cancelled. A connection
waiting to write has a deadline (the write timeout) but is never evicted: what it still has
to send would be lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("cloverleaf.server")

#: descriptors kept for the store, logs, the upstream pool's idle sockets and the listener
FD_RESERVE = 64
SWEEP_SECONDS = 1.0


@dataclass(slots=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    keepalive_timeout: float = 5.0
    max_connections: int = 10_000
    write_timeout: float = 30.0


def raise_nofile_limit() -> tuple[int, int]:
    """Soft ``RLIMIT_NOFILE`` → hard (at most 2**20); returns the (soft, hard) now in force."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return (0, 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    want = min(want, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError) as exc:  # pragma: no cover - a container that forbids it
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, want, exc)
    return soft, hard


def effective_cap(limits: ConnectionLimits) -> int:
    """The configured cap, lowered to what the file-descriptor limit can carry."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except ImportError:  # pragma: no cover - not POSIX
        return limits.max_connections
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    return min(limits.max_connections, max(16, (soft - FD_RESERVE) // 2))


class Guarded(Protocol):
    """What the guard needs of a connection."""

    deadline: float | None
    idle_since: float
    write_paused: bool  # output waits for the client to read: not idle, never evicted

    def expire(self) -> bool:
        """Close it (True), or False: it is still making progress and moved its deadline."""


class ConnectionGuard:
    """Every open connection of one server, their deadlines, and the cap (see the module)."""

    __slots__ = ("limits", "cap", "connections", "loop", "_sweeper", "evicted", "refused", "expired", "lingering")

    def __init__(self, limits: ConnectionLimits, loop: asyncio.AbstractEventLoop) -> None:
        self.limits = limits
        self.cap = effective_cap(limits)
        self.connections: set[Guarded] = set()
        self.loop = loop
        self._sweeper: asyncio.TimerHandle | None = None
        self.evicted = self.refused = self.expired = 0
        self.lingering = 0  # refused connections still open while their 503 is read
        if self.cap < limits.max_connections:
            log.info("connection cap %d (the open-file limit allows no more than that)", self.cap)

    def admit(self, conn: Guarded) -> bool:
        """Register ``conn``; False means the server is full of busy connections (answer 503)."""
        if len(self.connections) >= self.cap and not self._evict_one():
            self.refused += 1
            return False
        self.connections.add(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(SWEEP_SECONDS, self._sweep)
        return True

    def leave(self, conn: Guarded) -> None:
        self.connections.discard(conn)

    def _evict_one(self) -> bool:
        """Close the connection idle (or stuck in its request head) the longest: under a
        flood of idle or slowloris connections the flood's oldest go first, and a real
        client's connection that has just been answered goes last."""
        oldest: Guarded | None = None
        for conn in self.connections:
            if (conn.deadline is not None and not conn.write_paused
                    and (oldest is None or conn.idle_since < oldest.idle_since)):
                oldest = conn
        if oldest is None:
            return False
        self.connections.discard(oldest)
        self.evicted += 1
        oldest.expire()
        return True

    def _sweep(self) -> None:
        now = self.loop.time()
        expired = [c for c in self.connections if c.deadline is not None and c.deadline <= now]
        for conn in expired:
            if conn.expire():
                self.connections.discard(conn)
                self.expired += 1
        self._sweeper = self.loop.call_later(SWEEP_SECONDS, self._sweep) if self.connections else None

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
