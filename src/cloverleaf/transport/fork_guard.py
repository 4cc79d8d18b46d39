"""Connection pools belong to the process that opened them: after ``os.fork()``, a new one.

A client used before a fork (gunicorn ``--preload``, celery's prefork pool, multiprocessing's
``fork`` start method, uWSGI's workers) hands every child a copy of its pooled keep-alive
sockets. Parent and children then write requests on the same TCP connection and read one
another's answers: a call in one process receives the answer to another process's prompt (a
data leak), or a broken or stalled response. So a pool is held by a :class:`PerProcess`,
which records the pid it was built in and, in any other process, builds a fresh one on first
use instead of handing out the inherited one.

The inherited pool is dropped, never closed with its protocol: a graceful close (a TLS
close_notify, an HTTP/2 GOAWAY, a ``shutdown()``) would end the connection for the parent
too. A backend may pass ``abandon`` to release the inherited sockets' descriptors at once:
closing a descriptor in the child only drops the child's reference to the socket.

The pid is asked for (``os.getpid()``, a cheap system call) rather than counted by an
``os.register_at_fork`` hook, which a fork made in C (uWSGI) never runs. For the same reason
the build lock is one per process, taken from a dict by pid: a lock copied into the child
while a thread of the parent held it would stay held forever there. The async h1 and aiohttp
pools, on the server's hot path, are told of a fork by :mod:`.fork_hooks` instead, which costs
nothing per request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """A value (a connection pool) built on first use in each process, at most once per process
    however many threads ask at once; ``abandon`` (optional) lets go of one inherited from a
    parent, which must not be closed the usual way (see the module's docstring)."""

    __slots__ = ("_build", "_abandon", "_held", "_locks")

    def __init__(self, build: Callable[[], T], abandon: Callable[[T], None] | None = None) -> None:
        self._build = build
        self._abandon = abandon
        #: (pid, value): read and replaced as one object, so a reader never pairs a pid with another's value
        self._held: tuple[int, T] | None = None
        #: one lock per process; dict.setdefault hands every thread of a process the same one
        self._locks: dict[int, threading.Lock] = {}

    def lock(self) -> threading.Lock:
        """This process's lock of this holder (never one a thread of the parent may have held)."""
        pid = os.getpid()
        lock = self._locks.get(pid)
        return lock if lock is not None else self._locks.setdefault(pid, threading.Lock())

    def get(self) -> T:
        """This process's value, built now if it has none (an inherited one is abandoned)."""
        held, pid = self._held, os.getpid()
        if held is not None and held[0] == pid:
            return held[1]
        with self.lock():
            held = self._held
            if held is not None and held[0] == pid:
                return held[1]
            if held is not None:
                self._let_go(held[1])
            value = self._build()
            self._held = (pid, value)
            return value

    def peek(self) -> T | None:
        """This process's value if it built one, else None (nothing is built)."""
        held = self._held
        return held[1] if held is not None and held[0] == os.getpid() else None

    def take(self) -> T | None:
        """This process's value, no longer held (the caller closes it); None if it built none. An
        inherited value is abandoned, never returned: it is not this process's to close."""
        with self.lock():
            held, self._held = self._held, None
        if held is None:
            return None
        if held[0] != os.getpid():
            self._let_go(held[1])
            return None
        return held[1]

    def _let_go(self, inherited: T) -> None:
        if self._abandon is not None:
            self._abandon(inherited)

