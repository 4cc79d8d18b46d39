"""Traces over HTTP, under the admin API (master key)::

    GET   /admin/traces[?limit&model&status&trace_id&after]   recent calls with their attempts, newest
                                                          first, a page at a time (``next``: the ``after``
                                                          of the next page, null on the last)
    POST  /admin/traces                                  create a trace {metadata?, id?} -> 201
    GET   /admin/traces/{trace_id}                       the trace with its calls
    POST  /admin/traces/{trace_id}/complete              mark it completed

The same operations as the SDK's ``gateway.traces.create/get/complete``, so a client that
talks to the server only over HTTP can group its calls: create a trace, send its id as
``x-cloverleaf-trace-id`` on each model call, read it back, complete it. A trace id that was
only ever sent in that header (never created) is a trace as well: ``GET`` finds it by its
calls and ``complete`` records it.

Reads wait for the store's batch writer first, so a call answered a moment ago is listed.
``?model=`` lists every call ``/admin/spend?by=model`` counts under that model (any of its
names: ``openai:gpt-4o``, a registry entry, ``openai/gpt-4o``), and the calls that asked for
that name (a route's calls, whichever target answered them).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import _jsoncodec as jsoncodec
from ..gateway.model_budgets import reader_canonical, targets_meaning
from ..gateway.store.keyset import cursor_of
from ..gateway.store.records import TraceRecord
from .admin_api import admin_route, only_params, page_after
from .admin_text import TRACE_ID_CHARS, storable
from .errors import ApiError, NotFound
from .fields import bad, get_dict, get_str, query_int
from .http_io import json_response
from .state import ServerState

#: a trace id as the store keeps it (64 characters), printable ASCII, no spaces
_TRACE_ID = re.compile(r"[\x21-\x7e]{1,64}")


class TraceIdConvertor(Convertor[str]):
    """A trace id in a URL: it may hold "/" ("team/run-1", as x-cloverleaf-trace-id allows), so
    it spans path segments, but never ends in "/complete", which is the action on it (so
    ``.../complete`` is only ever the POST, and a 405 there names POST alone)."""

    regex = r"(?:(?!/complete$)[^\n])+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("cloverleaf_trace", TraceIdConvertor())
MAX_METADATA_BYTES = 16_384


def trace_view(trace: TraceRecord) -> dict[str, Any]:
    return {"id": trace.id, "created_at": trace.created_at, "completed_at": trace.completed_at,
            "metadata": trace.metadata, "calls": [c.as_dict() for c in trace.calls]}


async def _read_trace(st: ServerState, trace_id: str) -> TraceRecord:
    store = st.backend.store
    found = None
    if storable(trace_id, TRACE_ID_CHARS):   # else never stored (and PostgreSQL refuses a NUL)
        await asyncio.to_thread(store.flush)
        found = await asyncio.to_thread(store.get_trace, trace_id)
    if found is None:
        raise NotFound(f"no trace {trace_id!r}: create it with POST /admin/traces, or send calls with "
                       "'x-cloverleaf-trace-id'", code="trace_not_found")
    return found


#: Calls listed by default, and at most, per page of ``GET /admin/traces`` (``next`` continues)
CALLS_LISTED, MAX_CALLS_LISTED = 50, 1000


@admin_route
async def traces(request: Request, st: ServerState) -> Response:
    only_params(request, "limit", "model", "status", "trace_id", "after")
    q = request.query_params
    limit = query_int(q.get("limit"), "limit", CALLS_LISTED, 1, MAX_CALLS_LISTED)
    after = page_after(q.get("after"))
    model, status, trace_id = q.get("model"), q.get("status"), q.get("trace_id")
    if not all(storable(v, None) for v in (model, status, trace_id) if v is not None):
        return json_response({"data": [], "next": None})   # no call holds a NUL (and PostgreSQL refuses to look)
    store = st.backend.store
    canonical = reader_canonical(st.backend.engine)

    def read() -> list[Any]:
        store.flush()   # a call answered a moment ago is listed too
        # by model: every call its row in /admin/spend?by=model counts, whatever name answered it
        targets = targets_meaning(model, store.call_targets(), canonical) if model is not None else ()
        return store.recent_calls(limit + 1, model=model, status=status, trace_id=trace_id,
                                  targets=targets, after=after)

    calls = await asyncio.to_thread(read)
    following = cursor_of(calls[limit - 1].created_at, calls[limit - 1].id) if len(calls) > limit else None
    return json_response({"data": [c.as_dict() for c in calls[:limit]], "next": following})


@admin_route
async def create_trace(request: Request, st: ServerState) -> Response:
    body = await st.read_json(request)
    unknown = set(body) - {"id", "metadata"}
    if unknown:
        raise bad(sorted(unknown)[0], "unknown field; a trace takes 'metadata' (an object) and optionally 'id'")
    metadata = get_dict(body, "metadata", "") or {}
    if len(jsoncodec.dumps(metadata)) > MAX_METADATA_BYTES:
        raise bad("metadata", f"must be at most {MAX_METADATA_BYTES} bytes of JSON")
    trace_id = get_str(body, "id", "")
    traces_api = st.backend.gateway.traces
    if trace_id is None:
        trace = await asyncio.to_thread(traces_api.create, metadata)   # a new random id: no conflict
    else:
        if not _TRACE_ID.fullmatch(trace_id):
            raise bad("id", "must be 1 to 64 printable ASCII characters without spaces")
        found = await asyncio.to_thread(lambda: traces_api.create_if_absent(metadata, id=trace_id))
        if found is None:
            raise ApiError(f"trace {trace_id!r} already exists", status=409, kind="invalid_request",
                           code="trace_exists", param="id")
        trace = found
    return json_response(trace_view(trace), status=201)


@admin_route
async def trace(request: Request, st: ServerState) -> Response:
    return json_response(trace_view(await _read_trace(st, request.path_params["trace_id"])))


@admin_route
async def complete_trace(request: Request, st: ServerState) -> Response:
    found = await _read_trace(st, request.path_params["trace_id"])
    if found.completed_at is None:  # completing twice keeps the first time
        st.backend.gateway.traces.complete(found.id)
    return json_response(trace_view(await _read_trace(st, found.id)))


routes = [
    Route("/admin/traces", traces, methods=["GET"]),
    Route("/admin/traces", create_trace, methods=["POST"]),
    Route("/admin/traces/{trace_id:cloverleaf_trace}/complete", complete_trace, methods=["POST"]),
    Route("/admin/traces/{trace_id:cloverleaf_trace}", trace, methods=["GET"]),
]
