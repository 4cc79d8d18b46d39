"""The one sync/async rule of cloverleaf, written down once.

**Pure cores, thin sync and async drivers at the edges.** Everything that decides (request
building, response parsing, stream decoding, retry decisions, fallback plans where they are
pure) is plain code that neither blocks nor awaits; the edges that wait on I/O come in twins,
each a few lines that drive the same core:

- adapters and stream decoders (``providers/``, ``streams/``) do no I/O at all, so sync and
  async callers share every line of them;
- the transport's retry decisions are one object (``transport.retry.Retry``) driven by
  ``retrying`` (sleeps) and ``aretrying`` (awaits); each backend's attempt is the only twin;
- the engine's ``chat``/``achat``, ``stream``/``astream``, ... build and parse once and differ
  only in ``send`` versus ``await asend``.

**A loop thread only where the design says why.** The gateway's attempt loop awaits in many
places (shared state, rate-limit waits, budgets, the engine); its sync face drives the one async
core on a private loop thread (``gateway/bridge.py`` says why a planner was not worth it). The
sync ``run_workflow`` is a thin driver too: ``asyncio.run`` over the one async runner. Blocking
library calls inside async code (SQL stores) go through ``asyncio.to_thread``. The only other
threads are background workers off every call's path (the store's batch writer, the gateway's
cleanup), each started once per gateway.

**Twins are named one way**, and ``tests/sdk/test_parity.py`` holds every public class to it
through :func:`twin_name`: a sync class and its async twin (``Client``/``AsyncClient``,
``Stream``/``AsyncStream``) have the same method names and signatures except the pairs below;
a class serving both (``Provider``) and the module-level functions prefix the async twin with
``a`` (``chat``/``achat``, ``generate_image``/``agenerate_image``).
"""

from __future__ import annotations

#: Sync name -> async name, where the async twin is not simply the same name.
SPECIAL_TWINS = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__", "__iter__": "__aiter__",
                 "__next__": "__anext__"}


def twin_name(sync_name: str, *, prefixed: bool) -> str:
    """The async twin's name of ``sync_name``: ``close`` -> ``aclose`` always; otherwise the
    same name between twin classes, or ``a`` + name where one class or module serves both."""
    special = SPECIAL_TWINS.get(sync_name)
    if special is not None:
        return special
    return f"a{sync_name}" if prefixed else sync_name
