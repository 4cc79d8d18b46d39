"""What every route shares, built once at startup, and the one error boundary of a route.

The request pipeline is the same for both model APIs, and lives here so each route reads
as its own five steps: authenticate (401) → read and parse the body (413/400) → admit the
model for this key (403) and check it exists (404) → call the gateway → render.

:func:`endpoint` wraps every route: whatever a route raises becomes the API's own error
shape through :func:`~.errors.to_api_error` (a known error its status; anything else a 500
with an incident id in the log) and is counted in the metrics. Routes therefore raise and
never catch. The only other boundary is the body of a stream, after the headers have gone
out (:mod:`.streaming`).

Timing: the ASGI middleware (``app.TimingMiddleware``) stamps ``x-cloverleaf-overhead-ms``
on every response as total time minus ``scope["cloverleaf.upstream_ms"]``, which the
routes set from the engine's measurement of the upstream call (for a stream: the wait for
its first event). The gateway's deliberate waits (rate-limit room, retry backoff) are not
upstream time: they count as overhead (README says so).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from .._capabilities import Capability
from .._context import CallContext
from .._errors import ProviderError, billed_answer
from .auth import Authenticator, Principal
from .backend import Backend
from .call_headers import (
    BETA_HEADER,
    REQUEST_ID_HEADERS,
    cache_directive,
    client_betas,
    request_id,
    traceparent,
    tracestate,
)
from .deadlines import BodyDeadlines
from .errors import BadRequest, ClientClosed, Flavor, error_body, to_api_error
from .h1_server import HANGUP_EXTENSION
from .http_io import read_json
from .keys import VirtualKeys
from .metrics import Metrics, counted_usage
from .options import ServerOptions
from .privacy import DATA_CLASS_HEADER, PRIVACY_HEADER, privacy_headers
from .projects import PROJECT_HEADER, call_project
from .secrets import SecretBox

T = TypeVar("T")
JSON = "application/json"
UNKNOWN = "-"
MODEL_KEY = "cloverleaf.model"
#: the scope key under which a route notes its admitted call's context (an error names the call by it)
CONTEXT_KEY = "cloverleaf.context"
MAX_TRACE_ID = 64  # the store's trace id column  # the scope key under which a route notes the admitted model


@dataclass(slots=True)
class ServerState:
    options: ServerOptions
    backend: Backend
    auth: Authenticator
    keys: VirtualKeys | None
    metrics: Metrics
    box: SecretBox | None
    started_at: float
    #: ``/openapi.json``, serialised once
    openapi: bytes
    #: the one watchdog for request bodies' deadlines
    deadlines: BodyDeadlines = field(default_factory=BodyDeadlines)
    #: stored Responses API objects (:class:`~.responses.state.ResponseStore`), built by ``create_app``
    responses: Any = None

    # -- pipeline ------------------------------------------------------------------------
    async def authenticate(self, request: Request) -> Principal:
        headers = request.headers
        client = request.client
        return await self.auth.authenticate(headers.get("authorization"), headers.get("x-api-key"),
                                            client.host if client else None, headers.get("host"))

    async def read_json(self, request: Request) -> dict[str, Any]:
        return await read_json(request, self.options.max_body_bytes, self.options.body_timeout_seconds,
                               self.deadlines)

    async def admit(self, request: Request, principal: Principal, model: str,
                    operation: Capability | None = None) -> CallContext:
        principal.check_model(model)
        headers = request.headers
        trace_id = headers.get("x-cloverleaf-trace-id") or None
        if trace_id is not None and not (len(trace_id) <= MAX_TRACE_ID and trace_id.isascii()
                                         and trace_id.isprintable() and " " not in trace_id):
            raise BadRequest(f"x-cloverleaf-trace-id: must be 1 to {MAX_TRACE_ID} printable ASCII characters "
                             "without spaces", param="x-cloverleaf-trace-id", code="invalid_trace_id")
        privacy, data_class = headers.get(PRIVACY_HEADER), headers.get(DATA_CLASS_HEADER)
        if privacy is not None or data_class is not None:
            privacy, data_class = privacy_headers(self.backend.engine.privacy.config, privacy, data_class)
        project = call_project(principal.policy, headers.get(PROJECT_HEADER))   # the key's; else the header's
        ctx = CallContext(trace_id=trace_id, project=project, key=principal.policy,
                          after_response=request.scope.get(AFTER_RESPONSE_JOBS),
                          cache=cache_directive(headers), traceparent=traceparent(headers), privacy=privacy,
                          data_class=data_class)
        if ctx.traceparent is not None:
            ctx.tracestate = tracestate(headers)
        if headers.get(BETA_HEADER) is not None:   # every one of the header's lines, not only the first
            ctx.client_betas = client_betas([value.decode("latin-1") for name, value in request.scope["headers"]
                                             if name == b"anthropic-beta"])
        await self.backend.check_model(model, operation, ctx)
        request.scope[MODEL_KEY] = model
        request.scope[CONTEXT_KEY] = ctx
        return ctx

    async def until_disconnect(self, request: Request, work: Awaitable[T]) -> T:
        """Await ``work`` (the gateway call), cancelling it the moment the client hangs up.

        Call this once the body has been read: from then on ``receive`` has nothing to say but
        ``http.disconnect``. A watcher waits for that and cancels this task, so the downloads
        and the upstream call stop at once, and the gateway books the call as cancelled: its
        reservation is charged, as for a stream cut off, because the provider may bill what it
        had started. The client, gone, is counted as 499.

        Under the h1 server the watcher is a callback the connection runs when it is lost
        (the ``cloverleaf.hangup`` extension): no task, no waiter, nothing to cancel after."""
        task = asyncio.current_task()
        assert task is not None
        extensions = request.scope.get("extensions")
        on_hangup = extensions.get(HANGUP_EXTENSION) if extensions else None
        if on_hangup is not None:
            return await _until_hangup(on_hangup, task, work)
        watcher = asyncio.ensure_future(_cancel_on_disconnect(request.receive, task))
        try:
            return await work
        except asyncio.CancelledError:
            if watcher.done() and not watcher.cancelled() and watcher.result():
                task.uncancel()
                raise ClientClosed("the client closed the connection before the answer was ready") from None
            raise
        finally:
            watcher.cancel()

    def fail(self, request: Request, exc: BaseException, flavor: Flavor) -> Response:
        err = to_api_error(exc)
        scope = request.scope
        upstream = getattr(exc, "upstream_ms", None)
        if upstream:   # the providers' time, which x-cloverleaf-overhead-ms must not count
            scope["cloverleaf.upstream_ms"] = upstream
        # an answer the provider billed although it failed (a 502 upstream_generation_failed):
        # its tokens and cost count, as the ledger and the call record count them
        billed = billed_answer(exc)
        provider = str(err.extra.get("provider") or getattr(billed, "provider", None) or UNKNOWN)
        self.metrics.record(scope.get("cloverleaf.api", flavor), scope.get(MODEL_KEY, UNKNOWN), provider,
                            err.status, _elapsed(scope), code=err.code, usage=getattr(billed, "usage", None),
                            cost=getattr(billed, "cost", None))
        # the request's id, as on an answer: the provider's for the error it gave, else the call's
        upstream_id = exc.request_id if isinstance(exc, ProviderError) else None
        headers = {**err.headers, REQUEST_ID_HEADERS[flavor]: request_id(scope.get(CONTEXT_KEY), upstream_id)}
        return Response(error_body(err, flavor), status_code=err.status, headers=headers, media_type=JSON)

    def done(self, request: Request, model: str, provider: str, *, upstream: float | None,
             usage: Any = None, cost: float | None = None, cache: str | None = None) -> None:
        scope = request.scope
        if cache is not None:
            self.metrics.cache_result(scope.get("cloverleaf.api", "openai"), model, cache)
            usage = counted_usage(usage, cache)
        if upstream is not None:
            scope["cloverleaf.upstream_ms"] = upstream
        args = (scope["cloverleaf.api"], model, provider, 200, _elapsed(scope))
        deferred = scope.get(AFTER_RESPONSE)
        if deferred is not None:  # the fast path records it once the answer is on the wire
            deferred.append((args, usage, cost))
            return
        self.metrics.record(*args, usage=usage, cost=cost)


Handler = Callable[[Request, ServerState], Awaitable[Response]]


class HotRoute(NamedTuple):
    """What :class:`~.fast_path.Dispatcher` needs to serve a route without Starlette."""

    handler: Handler
    flavor: Flavor
    label: str


def endpoint(flavor: Flavor, *, api: str | None = None,
             versioned: bool = False) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Make ``handler(request, state)`` a Starlette route with the server's one error boundary.

    ``flavor`` picks the error shape (OpenAI or Anthropic); ``api`` is the metrics label
    (default: the flavor). ``versioned``: a route both SDKs call (``/v1/models``) answers
    errors in Anthropic's shape to a client that sends ``anthropic-version``."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        label = api or flavor

        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            request.scope["cloverleaf.api"] = label
            st: ServerState = request.app.state.cloverleaf
            try:
                return await handler(request, st)
            except Exception as exc:  # noqa: BLE001 - the boundary: known errors keep their status, others are 500s
                versioned_client = versioned and wants_anthropic(request)
                return st.fail(request, exc, "anthropic" if versioned_client else flavor)

        route.hot = HotRoute(handler, flavor, label)  # type: ignore[attr-defined]
        return route

    return wrap


#: Scope key of the gateway's bookkeeping (awaitables, see ``CallContext.after_response``)
#: that :class:`~.fast_path.Dispatcher` awaits after the response is sent.
AFTER_RESPONSE_JOBS = "cloverleaf.after_response_jobs"
#: Scope key of the metrics a hot route leaves for :class:`~.fast_path.Dispatcher` to record
#: after the response is sent (off the client's critical path).
AFTER_RESPONSE = "cloverleaf.after_response"


async def _until_hangup(on_hangup: Callable[[Callable[[], None] | None], bool], task: asyncio.Task[Any],
                        work: Awaitable[T]) -> T:
    gone = False

    def hang_up() -> None:
        nonlocal gone
        gone = True
        task.cancel()

    if not on_hangup(hang_up):   # already gone: the work stops at its first wait, as below
        hang_up()
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise ClientClosed("the client closed the connection before the answer was ready") from None
        raise
    finally:
        on_hangup(None)


async def _cancel_on_disconnect(receive: Callable[[], Awaitable[Any]], task: asyncio.Task[Any]) -> bool:
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()
    return True


def wants_anthropic(request: Request) -> bool:
    """A client of Anthropic's API (its SDK always sends ``anthropic-version``)."""
    return "anthropic-version" in request.headers


def _elapsed(scope: MutableMapping[str, Any]) -> float:
    t0 = scope.get("cloverleaf.t0")
    return time.perf_counter() - t0 if t0 is not None else 0.0


def upstream_ms(metadata: Any) -> float | None:
    """Time spent waiting on providers: the answering call as the engine measured it, plus
    every failed attempt before it (so fallbacks do not count as gateway overhead)."""
    latency = metadata.latency_ms
    failed = sum(a.latency_ms for a in metadata.attempts if getattr(a, "error", None) is not None)
    return failed + latency if latency is not None else (failed or None)


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def state_of(request: Request) -> ServerState:
    return request.app.state.cloverleaf  # type: ignore[no-any-return]
