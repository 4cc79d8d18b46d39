"""Serving a gateway stream as SSE, for either API's encoder.

The first output event is awaited *before* the response starts: an error up to that point
(unknown key, 429, every target failed, a capability the provider lacks) is still a real
HTTP error with the right status. After the headers have gone out, an error can only be
reported in-band, as the API's own error event, and the stream ends there.

Each event is encoded once and written once; the upstream iterator is always closed
(client disconnect included), so the gateway can record the call, give back its rate-limit
tickets and budget reservation, and free the connection. A client that hung up is counted
as status 499 (client closed request), as the gateway records the call as cancelled; a
stream the server stopped (still running when its graceful shutdown period ended) as 503,
and the client, still there, is told so in an error event.

Why not Starlette's ``StreamingResponse``: on a disconnect it cancels the body through an
anyio cancel scope, and such a scope cancels *every* later await inside it too, so the
gateway's cleanup (settling limits and budgets, which awaits) would itself be cancelled and
the reservation left to expire. :class:`EventStream` runs the body as a plain asyncio task
and cancels it once; the cleanup then runs to the end.

The body has the server's second error boundary (the first is :func:`.state.endpoint`):
once the headers are out, any error — an unexpected one included, as a 500 with an
incident id — can only be reported in-band, as the API's own error event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._context import CallContext
from .._errors import billed_answer
from .._types import StreamEvent
from .call_headers import call_headers
from .errors import ApiError, Flavor, error_payload, to_api_error
from .http_io import tally_usage
from .metrics import counted_usage
from .state import ServerState

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
BODY = "http.response.body"


class Encoder(Protocol):
    usage: Any

    def start(self) -> bytes: ...

    def encode(self, ev: StreamEvent) -> bytes | None: ...

    def finish(self) -> bytes: ...

    def error(self, payload: dict[str, Any]) -> bytes: ...


async def open_stream(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    """Events up to and including the first one that produces output (or ``done``)."""
    head: list[StreamEvent] = []
    async for ev in events:
        head.append(ev)
        if ev.type != "usage":
            break
    return head


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


async def serve_stream(st: ServerState, request: Request, flavor: Flavor, model: str,
                       events: AsyncIterator[StreamEvent], encoder: Encoder,
                       ctx: CallContext | None = None) -> EventStream:
    scope = request.scope
    t0 = scope.get("cloverleaf.t0") or time.perf_counter()
    waited = time.perf_counter()
    try:
        head = await st.until_disconnect(request, open_stream(events))  # up to the first token
    except BaseException:
        await _close(events)
        raise
    first_at = time.perf_counter()
    scope["cloverleaf.upstream_ms"] = (first_at - waited) * 1000.0
    api = scope.setdefault("cloverleaf.api", flavor)   # the endpoint's metrics label (``responses``)
    cache = ctx.cache_result if ctx is not None else None   # known once the first event is in
    target = ctx.answering_target if ctx is not None else None   # known once the first output is in
    provider = ctx.answering_provider if ctx is not None else None
    stream = EventStream(st, flavor, model, events, head, encoder, t0, first_at, api, cache, provider)
    if ctx is not None:   # the request's id (the gateway's: the provider's comes with the stream's end)
        extra = call_headers(ctx, target, flavor)
        stream.raw_headers = [*SSE_HEADERS, *((k.encode(), v.encode()) for k, v in extra.items())]
    if cache is not None:
        st.metrics.cache_result(api, model, cache)
    return stream


class EventStream(Response):
    """A ``text/event-stream`` response whose body is cancelled once, asyncio's way, when
    the client disconnects (see the module docstring).

    The body is one coroutine (:meth:`_pump`): it encodes each event once and hands the
    bytes straight to ``send`` — no generator in between, so a chunk costs one encode and
    one ``send``."""

    def __init__(self, st: ServerState, flavor: Flavor, model: str, events: AsyncIterator[StreamEvent],
                 head: list[StreamEvent], encoder: Encoder, t0: float, first_at: float, api: str | None = None,
                 cache: str | None = None, provider: str | None = None) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = SSE_HEADERS
        self._st, self._flavor, self._model = st, flavor, model
        self._api = api or flavor      # the metrics label: the endpoint's, which the error shape may share
        self._events, self._head, self._encoder = events, head, encoder
        self._t0, self._first_at = t0, first_at
        self._cache = cache            # "hit": the stream is a cached answer, which consumed no tokens
        #: the answering target's provider, for a stream that ends without its done event (a hang-up)
        self._provider = provider or "-"
        self._cut = False  # the server cancelled the request (its shutdown), not the client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        pump = asyncio.ensure_future(self._pump(send))
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # a client hanging up ends the wait (``gone``); this task cancelled is the server
            # stopping it: the graceful shutdown period is over
            self._cut = True
            raise
        finally:
            gone.cancel()
            pump.cancel()  # nothing when it has finished; else one cancellation, then its cleanup runs
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _pump(self, send: Send) -> None:
        encoder, events = self._encoder, self._events
        status, code, provider, cost = 200, None, self._provider, None
        try:
            # usage the upstream reported before its first token (Anthropic's own message_start)
            # is counted before the start event is written, so it is in it (Anthropic's
            # message_start.usage); counting it again when its event is encoded changes nothing
            for ev in self._head:
                if ev.type == "usage":
                    tally_usage(encoder.usage, ev)
            out = encoder.start()
            for ev in self._head:
                if ev.type == "done" and ev.response is not None:
                    provider, cost = ev.response.provider, ev.response.cost
                chunk = encoder.encode(ev)
                if chunk:
                    out += chunk
            await send({"type": BODY, "body": out, "more_body": True})
            async for ev in events:
                if ev.type == "done" and ev.response is not None:
                    provider, cost = ev.response.provider, ev.response.cost
                chunk = encoder.encode(ev)
                if chunk:
                    await send({"type": BODY, "body": chunk, "more_body": True})
            await send({"type": BODY, "body": encoder.finish(), "more_body": False})
        except asyncio.CancelledError:  # the client hung up, or the server is shutting down
            if not self._cut:
                status, code = 499, "client_closed_request"
                raise
            err = ApiError("the server is shutting down and stopped this stream; retry the request", status=503,
                           kind="overloaded", code="server_shutting_down")
            status, code = err.status, err.code
            with contextlib.suppress(Exception):  # the client is still there: say why the stream ends
                await send({"type": BODY, "body": encoder.error(error_payload(err, self._flavor)),
                            "more_body": False})
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary after the headers: reported in-band
            err = to_api_error(exc)
            status, code = err.status, err.code
            billed = billed_answer(exc)   # an answer billed, then failed: its cost counts (its usage came as events)
            if billed is not None:
                provider, cost = billed.provider or provider, billed.cost
            await send({"type": BODY, "body": encoder.error(error_payload(err, self._flavor)), "more_body": False})
        finally:
            await _close(events)  # a client that hung up must still close the upstream call
            self._st.metrics.record(self._api, self._model, provider, status, time.perf_counter() - self._t0,
                                    usage=counted_usage(encoder.usage, self._cache), cost=cost,
                                    ttft=self._first_at - self._t0, code=code)


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
