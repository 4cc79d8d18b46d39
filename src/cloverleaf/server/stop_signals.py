"""How ``cloverleaf serve`` stops on a signal: every signal that asks it to stop lets the
requests in flight finish (uvicorn's graceful shutdown, up to 10 s), and a drained stop is a
clean exit.

uvicorn drains on SIGINT and SIGTERM only. SIGHUP (a closed terminal, ``kill -HUP`` from a
supervisor, a conventional ``ExecReload``) kept the default action, which killed the process
at once: answers in flight were dropped and streams cut without their error event. Here:

- one serving process (``--workers 1``): SIGHUP is handled as SIGTERM, drained and exited;
- several (``--workers N``): the main process is uvicorn's supervisor, whose SIGHUP replaces
  the workers one at a time, each old one draining as on SIGTERM; a worker ignores a SIGHUP
  of its own (a terminal hang-up reaches every process of the group), so the supervisor's
  orderly restart decides, rather than every worker stopping at once.

After draining on SIGTERM uvicorn raises the signal again with the handler it found, which
by default killed the process (exit status -15, 143 in a shell) where SIGINT ended with 0.
A drained stop is the same success whichever signal asked for it, so the handler uvicorn
finds here ends the process with status 0 (``SystemExit``: the interpreter exits normally,
running its exit handlers, as after a Ctrl-C). The same handler stops a server that gets SIGTERM before uvicorn has
installed its own (nothing is in flight yet).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: None where the platform has no such signal (Windows)
_SIGHUP: signal.Signals | None = getattr(signal, "SIGHUP", None)


@contextlib.contextmanager
def drain_on_every_stop_signal() -> Iterator[None]:
    """Around ``uvicorn.run`` in the single serving process: SIGHUP drains as SIGTERM does, and
    a drained SIGTERM (or SIGHUP) exits with status 0. The handlers found are put back after
    (``serve`` may be called from Python; signals belong to the main thread, as for uvicorn)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mine = {signal.SIGTERM: _exit_cleanly, **({_SIGHUP: _as_terminate} if _SIGHUP is not None else {})}
    found = {sig: signal.signal(sig, handler) for sig, handler in mine.items()}
    try:
        yield
    finally:
        for sig, handler in found.items():
            signal.signal(sig, handler)


def leave_hangup_to_the_supervisor() -> None:
    """For a worker of ``--workers N``: SIGHUP is the supervisor's to act on (see above)."""
    if _SIGHUP is not None and threading.current_thread() is threading.main_thread():
        signal.signal(_SIGHUP, signal.SIG_IGN)


def _as_terminate(signum: int, frame: FrameType | None) -> None:
    """SIGHUP, delivered again as SIGTERM: uvicorn's handler while it serves (a graceful
    shutdown), :func:`_exit_cleanly` before it starts and once it has drained. Nothing is
    logged here: writing to a stream from a signal handler can break a write in progress."""
    signal.raise_signal(signal.SIGTERM)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
