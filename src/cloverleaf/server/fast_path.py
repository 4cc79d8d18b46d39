"""The hot routes as one pure-ASGI dispatcher in front of the Starlette app.

Why: on the model APIs the gateway's own work is a few hundred microseconds per request,
and Starlette's stack around a route (error middleware, exception middleware, the timing
middleware, route matching by regex, the ``request_response`` wrapper and its exception
handling) was measured at about a fifth of it. The three routes that carry the traffic —
``POST /v1/chat/completions``, ``POST /v1/messages``, ``POST /v1/embeddings`` — therefore
go through :class:`Dispatcher`: one dict lookup on ``(method, path)``, the same handler
function Starlette would call (so the pipeline, its checks and its error boundary are the
code the Starlette route runs too), and the answer written with ``http.response.start`` /
``http.response.body`` directly, ``x-cloverleaf-overhead-ms`` included.

Everything else — admin, metrics, health, openapi, the other model routes, the lifespan,
a hot path with another method or a trailing slash — goes to the Starlette app unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..gateway.store.handovers import Handovers
from .errors import BadRequest, Flavor, error_body
from .state import AFTER_RESPONSE, AFTER_RESPONSE_JOBS, HotRoute, ServerState
from .streaming import EventStream

log = logging.getLogger("cloverleaf.server")
OVERHEAD_HEADER = b"x-cloverleaf-overhead-ms"
START = "http.response.start"
BODY = "http.response.body"


class HotRequest(Request):
    """A Starlette ``Request`` whose ``headers`` is a plain dict built in one pass (the
    first value of a repeated name wins, as with Starlette's ``Headers.get``): the pipeline
    reads half a dozen headers per call, most of them absent, and a dict answers a miss
    without raising."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        super().__init__(scope, receive)
        flat: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1")
            if key not in flat:
                flat[key] = value.decode("latin-1")
        self._flat = flat

    @property
    def headers(self) -> dict[str, str]:  # type: ignore[override]
        return self._flat


def overhead_ms(scope: Scope, t0: float) -> float:
    """Time spent in the server so far, minus the upstream call the route noted."""
    upstream: float = scope.get("cloverleaf.upstream_ms", 0.0)
    return max(0.0, (time.perf_counter() - t0) * 1000.0 - upstream)


class Dispatcher:
    """The ASGI app ``create_app`` returns: hot routes here, the rest to ``fallback``.

    ``state`` is the Starlette app's ``state`` (``app.state.cloverleaf`` keeps working)."""

    def __init__(self, fallback: Any, st: ServerState, hot: dict[tuple[str, str], HotRoute]) -> None:
        self.fallback: ASGIApp = fallback
        self.state = fallback.state
        self._st = st
        self._hot = hot
        #: where a call's bookkeeping after its answer is announced, so a store flush waits for it
        store = getattr(st.backend, "store", None)
        self._handovers: Handovers = getattr(store, "handovers", None) or Handovers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._hot.get((scope["method"], scope["path"]))
            if route is not None:
                await self._serve(route, scope, receive, send)
                return
            if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
                await _refuse_nul(scope, send)
                return
        await self.fallback(scope, receive, send)

    async def _serve(self, route: HotRoute, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        scope["cloverleaf.t0"] = t0
        scope["cloverleaf.api"] = route.label
        st = self._st
        metrics = st.metrics
        request = HotRequest(scope, receive)
        deferred: list[Any] = []
        jobs: list[Awaitable[None]] = []
        scope[AFTER_RESPONSE] = deferred
        scope[AFTER_RESPONSE_JOBS] = jobs
        overhead = -1.0
        handover = 0
        metrics.in_flight += 1
        try:
            try:
                response = await route.handler(request, st)
            except Exception as exc:  # noqa: BLE001 - the route's error boundary, as in state.endpoint
                response = st.fail(request, exc, route.flavor)
            if jobs:   # announced before the answer goes out: a reader that flushes from now on waits for it
                handover = self._handovers.open()
            overhead = overhead_ms(scope, t0)
            headers = [*response.raw_headers, (OVERHEAD_HEADER, b"%.3f" % overhead)]
            if isinstance(response, EventStream):
                response.raw_headers = headers
                await response(scope, receive, send)
            else:
                await send({"type": START, "status": response.status_code, "headers": headers})
                await send({"type": BODY, "body": response.body})
        finally:
            metrics.in_flight -= 1
            # bookkeeping the client does not wait for: after the answer is sent
            if overhead >= 0.0:
                metrics.observe_overhead(scope["cloverleaf.api"], overhead / 1000.0)
            for args, usage, cost in deferred:
                metrics.record(*args, usage=usage, cost=cost)
            if jobs:
                await _run_jobs(jobs, self._handovers, handover or self._handovers.open())


async def _refuse_nul(scope: Scope, send: Send) -> None:
    """A 400 for a path or query holding a NUL character (``%00``). No name, id or filter value
    the server keeps can hold one (PostgreSQL refuses NUL in text), and one that reached the
    store as a lookup was a 500 there: ``/v1/models/a%00b``, a trace id, a dashboard filter."""
    flavor: Flavor = "anthropic" if scope["path"].startswith("/v1/messages") else "openai"
    err = BadRequest("the request's path or query holds a NUL character (%00), which no name, id or value here "
                     "can contain; remove it", code="invalid_nul")
    await send({"type": START, "status": err.status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": BODY, "body": error_body(err, flavor)})


async def _run_jobs(jobs: list[Awaitable[None]], handovers: Handovers, handover: int) -> None:
    """Await the gateway's after-response bookkeeping, every item exactly once, then close its
    ``handover`` (a store flush waits for it). A failure is logged (the client has its answer)
    and the rest still runs; if this task is cancelled midway, what is left runs in a task of
    its own, which closes the handover then, so no rate-limit ticket or budget reservation is
    left unsettled and no reader counts the call before it is."""
    try:
        for i, job in enumerate(jobs):
            try:
                await job
            except asyncio.CancelledError:
                rest = jobs[i + 1:]
                if rest:
                    _orphans.add(task := asyncio.ensure_future(_run_jobs(rest, handovers, handover)))
                    task.add_done_callback(_orphans.discard)
                    handover = 0
                raise
            except Exception as exc:  # noqa: BLE001 - bookkeeping after the answer never fails the request
                log.warning("bookkeeping after a response failed: %s", type(exc).__name__)
    finally:
        if handover:
            handovers.close(handover)


#: Tasks finishing bookkeeping for cancelled requests (held so they are not garbage-collected).
_orphans: set[asyncio.Task[None]] = set()
