"""The Starlette app: ``create_app(settings) -> ASGI app``.

Everything a request needs is built here once — the gateway client and its connection
pool, the authenticator, the metrics registry, the precomputed response pieces — and
hung on ``app.state.cloverleaf`` (:class:`~.state.ServerState`). Nothing is rebuilt per
request.

The three routes that carry the traffic are served by :class:`~.fast_path.Dispatcher`
in front of Starlette (a dict lookup instead of Starlette's middleware and routing
stack); everything else goes through Starlette. On that side one pure-ASGI middleware
(no ``BaseHTTPMiddleware``, which costs a task per request) stamps
``x-cloverleaf-overhead-ms`` on every response and feeds the overhead histogram, as the
dispatcher does for its routes.

With ``[server] cors_origins`` set, :class:`~.cors.CorsLayer` goes in front of the dispatcher
(browser pages on those origins may call the model APIs); without it the layer does not exist,
so the hot path pays nothing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._config import Settings
from .._errors import CloverleafError
from .._setting_values import env_whole
from . import admin_api, admin_traces, anthropic_api, azure_api, openai_api, responses
from .auth import Authenticator
from .backend import Backend
from .cors import CorsLayer
from .errors import ApiError, error_body
from .fast_path import OVERHEAD_HEADER, Dispatcher, overhead_ms
from .heap import trim_heap_periodically
from .http_io import dumps, json_response
from .keys import VirtualKeys
from .metrics import CONTENT_TYPE, Metrics, StoreQueue
from .openapi import document as openapi_document
from .options import ServerOptions
from .responses.state import ResponseStore
from .route_hints import not_found_message
from .secrets import SecretBox
from .state import HotRoute, ServerState, state_of

log = logging.getLogger("cloverleaf.server")
#: served by the dispatcher without Starlette (same handlers, same error boundary)
HOT_ROUTES = (("POST", "/v1/chat/completions"), ("POST", "/v1/messages"), ("POST", "/v1/embeddings"))


#: Paths whose requests are not counted in flight: the monitoring that reads the count (a
#: Prometheus scrape, the dashboard's health page) and the probes. Counted, an idle server's
#: every scrape read ``cloverleaf_in_flight_requests 1``: itself. Only requests that reach
#: Starlette are looked up here; the hot routes (``fast_path``) count theirs without it.
NOT_IN_FLIGHT = frozenset({"/metrics", "/health", "/ready", "/ui/health", "/ui/health/live"})


class TimingMiddleware:
    """Adds ``x-cloverleaf-overhead-ms`` (time in the server minus the upstream call) and
    counts requests in flight (a stream is in flight until its last byte), but for the
    monitoring paths (``NOT_IN_FLIGHT``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        scope["cloverleaf.t0"] = t0

        async def send_with_overhead(message: Message) -> None:
            if message["type"] == "http.response.start":
                overhead = overhead_ms(scope, t0)
                message["headers"] = [*message.get("headers", ()), (OVERHEAD_HEADER, b"%.3f" % overhead)]
                api = scope.get("cloverleaf.api")
                if api is not None:
                    self.metrics.observe_overhead(api, overhead / 1000.0)
            await send(message)

        if scope["path"] in NOT_IN_FLIGHT:
            await self.app(scope, receive, send_with_overhead)
            return
        self.metrics.in_flight += 1
        try:
            await self.app(scope, receive, send_with_overhead)
        finally:
            self.metrics.in_flight -= 1


def create_app(settings: Settings | None = None, *, options: ServerOptions | None = None,
               transport: Any = None) -> Dispatcher | CorsLayer:
    """Build the server. ``transport`` replaces the engine's transport (tests)."""
    settings = settings or Settings.load()
    options = options or ServerOptions.from_settings(settings.server, settings.env)
    box = SecretBox(options.encryption_material) if options.encryption_material else None
    backend = Backend(settings, box=box, transport=transport)
    keys = VirtualKeys(backend.store, cache_seconds=options.key_cache_seconds) if backend.store is not None else None
    if keys is not None:   # a budget put on a key counts the key's spend so far
        keys.on_change(backend.key_changed)
    workers = settings.env.get("CLOVERLEAF_SERVE_WORKERS")
    several = workers is not None and env_whole("CLOVERLEAF_SERVE_WORKERS", workers, minimum=1) > 1
    metrics = Metrics(worker=str(os.getpid()) if several else None)   # see metrics.py: one series per worker
    state = ServerState(options=options, backend=backend, auth=Authenticator(options, keys), keys=keys,
                        metrics=metrics, box=box, started_at=time.time(), openapi=dumps(openapi_document()),
                        responses=ResponseStore(backend.store))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        if keys is not None:
            await keys.start()
        await state.auth.decide_mode()
        if state.auth.open_mode:
            log.warning("no CLOVERLEAF_MASTER_KEY and no virtual keys: the API is open to loopback clients only")
        trimmer = asyncio.create_task(trim_heap_periodically(options.heap_trim_seconds))
        try:
            yield
        finally:
            trimmer.cancel()
            if keys is not None:
                await keys.aclose()
            await backend.aclose()

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        *openai_api.routes,
        *azure_api.routes,   # Azure OpenAI's paths for openai.AzureOpenAI: aliases of the OpenAI routes
        *anthropic_api.routes,
        *responses.routes,
        *admin_api.routes,
        *admin_traces.routes,
        *_dashboard_routes(state),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.cloverleaf = state
    app.add_middleware(TimingMiddleware, metrics=metrics)
    dispatcher = Dispatcher(app, state, _hot_routes(routes))
    # decided once here: with no origins there is no CORS code on any request's path
    return CorsLayer(dispatcher, options.cors_origins) if options.cors_origins else dispatcher


#: what ``/ui`` answers while the dashboard is off (a newcomer's first click after ``scripts/run``)
DASHBOARD_OFF = ("The dashboard is off because CLOVERLEAF_MASTER_KEY is not set. Set it (16+ random characters) in "
                 "the server's environment, restart `cloverleaf serve`, and sign in here with it.\n")


async def _dashboard_off(request: Request) -> Response:
    return Response(DASHBOARD_OFF, status_code=404, media_type="text/plain; charset=utf-8")


def _dashboard_routes(state: ServerState) -> list[Route]:
    """``/ui`` (and ``/`` redirecting to it), only when the admin API is on; otherwise
    ``/ui`` says how to turn it on."""
    if not state.auth.admin_enabled:
        return [Route("/ui", _dashboard_off, methods=["GET"]), Route("/ui/{rest:path}", _dashboard_off, methods=["GET"])]
    from .ui import routes as ui_routes  # imported only when on: it needs jinja2

    return ui_routes(state)


def _hot_routes(routes: list[Route]) -> dict[tuple[str, str], HotRoute]:
    hot: dict[tuple[str, str], HotRoute] = {}
    for route in routes:
        for method in route.methods or ():
            if (method, route.path) in HOT_ROUTES:
                hot[(method, route.path)] = route.endpoint.hot  # type: ignore[attr-defined]
    if len(hot) != len(HOT_ROUTES):
        raise RuntimeError(f"a hot route has no Starlette route: {sorted(set(HOT_ROUTES) - set(hot))}")
    return hot


# --------------------------------------------------------------------------- small routes


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def ready(request: Request) -> Response:
    parts = await state_of(request).backend.ready()
    if "unreachable" in parts.values() or parts.get("store") == "unwritable":
        return json_response({"status": "unavailable", **parts}, status=503)
    return json_response({"status": "ready", **parts})


async def metrics_endpoint(request: Request) -> Response:
    st = state_of(request)
    try:
        breakers = {name: b["state"] for name, b in (await st.backend.breakers()).items()}
    except CloverleafError:  # the shared state backend is down: the scrape still answers
        breakers = {}
    writer = getattr(st.backend.store, "writer", None)
    store = None if writer is None else StoreQueue(writer.pending, writer.dropped, writer.waiting_for_database)
    telemetry = st.backend.gateway.telemetry
    spans = None if telemetry is None else telemetry.exporter.dropped_by_reason()
    return Response(st.metrics.render(breakers, store, spans), media_type=CONTENT_TYPE)


async def openapi_endpoint(request: Request) -> Response:
    return Response(state_of(request).openapi, media_type="application/json")


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            methods |= route.methods
    return sorted(methods)


def _flavor(request: Request) -> str:
    return "anthropic" if request.url.path.startswith("/v1/messages") else "openai"


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = (not_found_message(request.url.path, request.method, request.app.routes) if exc.status_code == 404
               else f"method {request.method} is not allowed here" if exc.status_code == 405 else str(exc.detail))
    kind = "not_found" if exc.status_code == 404 else "invalid_request"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method the path has (Starlette names only its first route's)
        headers["Allow"] = ", ".join(_allowed_methods(request))
    err = ApiError(message, status=exc.status_code, kind=kind, code=f"http_{exc.status_code}", headers=headers)
    return Response(error_body(err, _flavor(request)), status_code=err.status,  # type: ignore[arg-type]
                    headers=err.headers or None, media_type="application/json")
