"""Connection pools a process inherits through ``os.fork()`` belong to its parent.

A client used before a fork (gunicorn ``--preload``, celery prefork, multiprocessing's
``fork``) hands every child a copy of its pooled keep-alive sockets: parent and children then
write requests on the same connection and read each other's answers. Each pool owner registers
here; in a child, right after the fork, every live owner's ``after_fork_in_child()`` drops what
it inherited, so the child's calls open connections of its own. Nothing is checked per request
(the h1 client is the server's hot path); a fork made in C without ``os.fork()`` (uWSGI) runs
no such hook.

``generation()`` is a per-process counter (0 in the process that imported this module, one more
in each child after each fork) for an owner that prefers to compare rather than be called.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import Protocol

log = logging.getLogger("cloverleaf.transport")


class ForkAware(Protocol):
    def after_fork_in_child(self) -> None:
        """Forget the parent's connections (closing this process's copy of a socket is fine:
        the parent's stays open); never write on them."""


_owners: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_generation = 0


def register(owner: ForkAware) -> None:
    """Call ``owner.after_fork_in_child()`` in every child forked while it lives (held weakly)."""
    _owners.add(owner)


def generation() -> int:
    """How many forks stand between this process and the one that imported this module."""
    return _generation


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1
    for owner in list(_owners):
        try:
            owner.after_fork_in_child()
        except Exception as exc:  # noqa: BLE001 - a fork must never fail because of a pool
            log.debug("dropping inherited connections after a fork failed: %s", exc)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
