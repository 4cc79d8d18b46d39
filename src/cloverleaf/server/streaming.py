"""Serving a gateway stream as SSE, for either API's encoder.

The first output event is awaited *before* the response starts: an error up to that point
(unknown key, 429, every target failed, a capability the provider lacks) is still a real
HTTP error with the right status. After the headers have gone out, an error can only be
reported in-band, as the API's own error event, and the stream ends there.

Each event is encoded once and written once; the upstream iterator is always closed
(client disconnect included), so the gateway can record the call, give back its rate-limit
tickets and budget reservation, and free the connection. A client that hung up is counted
as status 499 (client closed request), as the gateway records the call as cancelled.

The body has the server's second error boundary (the first is :func:`.state.endpoint`):
once the headers are out, any error — an unexpected one included, as a 500 with an
incident id — can only be reported in-band, as the API's own error event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..types import StreamEvent
from .errors import Flavor, error_payload, to_api_error
from .state import ServerState

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


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
                       events: AsyncIterator[StreamEvent], encoder: Encoder) -> StreamingResponse:
    scope = request.scope
    t0 = scope.get("cloverleaf.t0") or time.perf_counter()
    waited = time.perf_counter()
    try:
        head = await open_stream(events)
    except BaseException:
        await _close(events)
        raise
    first_at = time.perf_counter()
    scope["cloverleaf.upstream_ms"] = (first_at - waited) * 1000.0
    scope["cloverleaf.api"] = flavor

    async def body() -> AsyncIterator[bytes]:
        status = 200
        code = None
        provider = "-"
        cost = None
        try:
            out = encoder.start()
            for ev in head:
                provider, cost = _seen(ev, provider, cost)
                chunk = encoder.encode(ev)
                if chunk:
                    out += chunk
            yield out
            async for ev in events:
                provider, cost = _seen(ev, provider, cost)
                chunk = encoder.encode(ev)
                if chunk:
                    yield chunk
            yield encoder.finish()
        except (asyncio.CancelledError, GeneratorExit):  # the client hung up
            status, code = 499, "client_closed_request"
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary after the headers: reported in-band
            err = to_api_error(exc)
            status, code = err.status, err.code
            yield encoder.error(error_payload(err, flavor))
        finally:
            with anyio.CancelScope(shield=True):  # a client that hung up must still close the upstream call
                await _close(events)
            st.metrics.record(flavor, model, provider, status, time.perf_counter() - t0, usage=encoder.usage,
                              cost=cost, ttft=first_at - t0, code=code)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


def _seen(ev: StreamEvent, provider: str, cost: float | None) -> tuple[str, float | None]:
    if ev.type == "done" and ev.response is not None:
        return ev.response.provider, ev.response.cost
    return provider, cost
