"""What every route shares, built once at startup: options, backend, auth, metrics.

The request pipeline is the same for both model APIs, and lives here so each route reads
as its own five steps: authenticate (401) → read and parse the body (413/400) → admit the
model for this key (403) and check it exists (404) → call the gateway → render. Errors at
any step become the API's own error shape via :meth:`ServerState.fail`.

Timing: the ASGI middleware (``app.TimingMiddleware``) stamps ``x-cloverleaf-overhead-ms``
on every response as total time minus ``scope["cloverleaf.upstream_ms"]``, which the
routes set from the engine's measurement of the upstream call (for a stream: the wait for
its first event).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..context import CallContext
from .auth import Authenticator, Principal
from .backend import Backend
from .errors import Flavor, error_body, to_api_error
from .keys import VirtualKeys
from .metrics import Metrics
from .options import ServerOptions
from .secrets import SecretBox

JSON = "application/json"
UNKNOWN = "-"


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

    # -- pipeline ------------------------------------------------------------------------
    async def authenticate(self, request: Request) -> Principal:
        headers = request.headers
        client = request.client
        return await self.auth.authenticate(headers.get("authorization"), headers.get("x-api-key"),
                                            client.host if client else None)

    async def admit(self, request: Request, principal: Principal, model: str) -> CallContext:
        principal.check_model(model)
        await self.backend.check_model(model)
        trace_id = request.headers.get("x-cloverleaf-trace-id")
        return CallContext(trace_id=trace_id[:200] if trace_id else None, key=principal.policy)

    def fail(self, request: Request, exc: BaseException, flavor: Flavor, model: str = UNKNOWN) -> Response:
        err = to_api_error(exc)
        request.scope.setdefault("cloverleaf.api", flavor)
        t0 = request.scope.get("cloverleaf.t0")
        elapsed = time.perf_counter() - t0 if t0 is not None else 0.0
        provider = str(err.extra.get("provider") or UNKNOWN)
        self.metrics.record(flavor, model, provider, err.status, elapsed, code=err.code)
        return Response(error_body(err, flavor), status_code=err.status, headers=err.headers or None, media_type=JSON)

    def done(self, request: Request, api: str, model: str, provider: str, *, upstream: float | None,
             usage: Any = None, cost: float | None = None, status: int = 200) -> None:
        scope = request.scope
        scope["cloverleaf.api"] = api
        if upstream is not None:
            scope["cloverleaf.upstream_ms"] = upstream
        t0 = scope.get("cloverleaf.t0")
        elapsed = time.perf_counter() - t0 if t0 is not None else 0.0
        self.metrics.record(api, model, provider, status, elapsed, usage=usage, cost=cost)


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
