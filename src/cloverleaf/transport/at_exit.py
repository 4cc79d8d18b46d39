"""Pools still open when the interpreter exits are closed then, not left to the collector.

A program that never closes its client (the module-level functions' default client, a
``Client`` kept in a global, the ``AsyncClient`` of the last ``asyncio.run()``) still held its
pooled keep-alive sockets when Python shut down; the collector then found each open and warned
"unclosed <socket ...>" or "unclosed transport", which ``python -W error`` and ``-X dev`` print
as "Exception ignored in ..." lines after the program's last output. Every transport registers
here (held weakly: registering keeps nothing alive) and an ``atexit`` hook closes those still
alive. A closed transport builds its pools again on next use, so an exit hook of the program's
own that runs after this one and calls the SDK still gets its answer.
"""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import Protocol

log = logging.getLogger("cloverleaf.transport")


class Closeable(Protocol):
    def close(self) -> None: ...


_live: weakref.WeakSet[Closeable] = weakref.WeakSet()


def register(owner: Closeable) -> None:
    """Close ``owner`` at interpreter exit if it is still alive then."""
    _live.add(owner)


def close_all() -> None:
    """Close every registered owner still alive (the ``atexit`` hook)."""
    for owner in list(_live):
        try:
            owner.close()
        except Exception as exc:  # noqa: BLE001 - an exit must never fail because of a pool
            log.debug("closing a transport at exit failed: %s", exc)


atexit.register(close_all)
