"""The store's PostgreSQL engine, and how long it waits for the database.

A PostgreSQL that stops answering — its host frozen, a network partition, the server stopped
with SIGSTOP — must not hang the gateway. libpq waits for an answer for ever by default, and
TCP never notices a stopped process (its kernel still acknowledges what is sent), so a thread
in a query would wait until the database came back: the request it serves with it, and, once
enough threads wait, the thread pool every other request shares. The bounds:

- ``CONNECT_TIMEOUT_SECONDS``: libpq's ``connect_timeout`` for a new connection (also the one
  made when the pool's ping finds an old connection dead). ``?connect_timeout=N`` in the URL
  wins.
- ``POOL_TIMEOUT_SECONDS``: how long a thread waits for a free connection when all of the
  pool's (10, and 20 more beyond) are busy.
- ``STATEMENT_TIMEOUT_SECONDS``: how long a statement, a commit or a rollback may wait for the
  answer; ``PING_TIMEOUT_SECONDS`` for the pool's ping of a connection before it is reused.
  The store's own queries are index lookups and small writes answered in milliseconds, a
  dashboard aggregate in well under a second; a wait this long means the database is not
  answering. A watchdog thread then shuts the connection's socket down: the waiting thread
  gets the driver's "server closed the connection" at once (a lost connection, which the pool
  discards and the server answers as a 503 ``store_unavailable``). This is a deadline on the
  client side on purpose: a database that does not answer cannot enforce a server-side
  ``statement_timeout``, and a ``statement_timeout`` sent as a startup option is refused by
  PgBouncer, a common sight in front of a shared PostgreSQL.

Maintenance that may rightly run long — the schema migrations at startup, the retention
cleanup over a large backlog — runs :func:`unbounded`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

log = logging.getLogger("cloverleaf.gateway")

CONNECT_TIMEOUT_SECONDS = 5
POOL_TIMEOUT_SECONDS = 5.0
STATEMENT_TIMEOUT_SECONDS = 30.0
PING_TIMEOUT_SECONDS = 5.0

_STATEMENTS = ("do_execute", "do_executemany", "do_execute_no_params")
_ENDINGS = ("do_commit", "do_rollback")
_local = threading.local()


def postgres_engine(url: str) -> sa.Engine:
    """A pooled engine for ``url`` (``postgresql+psycopg://``) with the bounds above."""
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in sa.engine.make_url(url).query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                              pool_timeout=POOL_TIMEOUT_SECONDS, connect_args=connect_args)
    bound_waits(engine.dialect, STATEMENT_TIMEOUT_SECONDS, PING_TIMEOUT_SECONDS)
    return engine


def bound_waits(dialect: Any, statement_seconds: float, ping_seconds: float) -> None:
    """Put every wait of ``dialect`` for the database under the watchdog: statements, commits
    and rollbacks (the pool's reset too: the pool calls the engine's dialect) and pings."""
    for name in _STATEMENTS:
        setattr(dialect, name, _bounded(getattr(dialect, name), _cursor_connection, statement_seconds))
    for name in _ENDINGS:
        setattr(dialect, name, _bounded(getattr(dialect, name), _dbapi_connection, statement_seconds))
    dialect.do_ping = _bounded(dialect.do_ping, _dbapi_connection, ping_seconds)


@contextlib.contextmanager
def unbounded() -> Iterator[None]:
    """This thread's statements may take as long as they take (migrations, cleanup)."""
    before = getattr(_local, "unbounded", False)
    _local.unbounded = True
    try:
        yield
    finally:
        _local.unbounded = before


def _bounded(method: Callable[..., Any], connection_of: Callable[[Any], Any], seconds: float) -> Callable[..., Any]:
    def call(first: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "unbounded", False):
            return method(first, *args, **kwargs)
        token = _WATCHDOG.arm(connection_of(first), seconds)
        try:
            return method(first, *args, **kwargs)
        finally:
            _WATCHDOG.disarm(token)

    return call


def _cursor_connection(cursor: Any) -> Any:
    return cursor.connection


def _dbapi_connection(connection: Any) -> Any:
    """The driver's connection behind the pool's proxy (the pool's reset passes the proxy)."""
    return getattr(connection, "dbapi_connection", None) or connection


class _Watchdog:
    """One thread for the process: it closes the socket of a connection that has waited past
    its deadline. Arming and disarming are a dict insert and pop under a lock; while anything
    is armed the thread looks a few times a second, and otherwise sleeps until something is.
    A connection is cut only while its wait is armed, under the lock its waiting thread takes
    to disarm before the connection can be closed or reused: the socket cut is always the
    one that wait is on."""

    TICK_SECONDS = 0.25

    def __init__(self) -> None:
        self.forked()

    def forked(self) -> None:
        """A fresh start; also in a forked child, where the parent's thread did not come along
        (and its lock may be held for ever)."""
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, float, Any]] = {}   # token -> (deadline, seconds, connection)
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._idle = False

    def arm(self, connection: Any, seconds: float) -> int:
        token = next(self._tokens)
        with self._cond:
            self._armed[token] = (time.monotonic() + seconds, seconds, connection)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="cloverleaf-store-watchdog", daemon=True)
                self._thread.start()
            elif self._idle:
                self._idle = False
                self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.pop(token, None)

    def _watch(self) -> None:
        with self._cond:
            while True:
                if not self._armed:
                    self._idle = True
                    self._cond.wait()
                    continue
                self._cond.wait(self.TICK_SECONDS)
                now = time.monotonic()
                for token in [t for t, (deadline, _, _) in self._armed.items() if deadline <= now]:
                    _, seconds, connection = self._armed.pop(token)
                    _cut(connection, seconds)


def _cut(connection: Any, seconds: float) -> None:
    """Shut down the connection's socket (through a duplicate of its descriptor, so the
    driver's own stays valid until the driver closes it): the driver's wait ends at once."""
    try:
        with socket.socket(fileno=os.dup(connection.fileno())) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception as exc:  # noqa: BLE001 - best effort: the connection may be closing already
        log.warning("the store did not answer within %g s, and its connection could not be closed: %s",
                    seconds, type(exc).__name__)
        return
    log.warning("the store did not answer within %g s: its connection was closed, and what waited on it failed",
                seconds)


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG.forked)
