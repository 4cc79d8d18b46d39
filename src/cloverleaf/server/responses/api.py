"""The Responses API routes: ``POST /v1/responses`` (JSON or SSE), ``GET`` and ``DELETE
/v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``, ``POST /v1/responses/{id}/cancel``
— for any backend provider.

``POST`` is the same pipeline as the other model routes (authenticate, parse, admit, call
the gateway, render), with two steps of its own: a ``previous_response_id`` is rebuilt into
the conversation's history from the store (:mod:`.state`), whatever provider made it, and a
``store: true`` answer is written to the store *before* the client sees it completed (see
:mod:`.state` for why). The ``model`` in a Response is the name the client asked for.

When every target of the model is OpenAI's own Responses API (``openai-responses/...``), its
answer is relayed unchanged but for the model name (:mod:`.passthrough`), and built-in tools
(web search, file search, computer use...), which only it runs, go upstream verbatim, as do
their items in ``input`` (``web_search_call``, ``computer_call_output``...); for any other
provider a built-in tool or such an item is a 400 that says so. Client-run ``custom`` and
``namespace`` tools are not built-in: every provider serves them (:mod:`.client_tools`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..._privacy import LOCAL_ONLY
from ..._types import StreamEvent
from ..auth import Principal
from ..call_headers import call_headers
from ..errors import ApiError
from ..fields import bad, query_int
from ..http_io import json_response
from ..state import ServerState, endpoint, new_id, upstream_ms
from ..streaming import serve_stream
from .item_refs import resolve_item_references
from .items import builtin_item_refused, reasoning_provider
from .passthrough import PassthroughEncoder, relayed
from .state import ResponseStore, StoredResponse
from .stream import ResponsesStreamEncoder
from .wire import ResponsesRequest, completed_object, parse_request

API = "responses"
DAY = 86400.0


def owner_of(principal: Principal) -> str:
    """Whose responses these are: one virtual key, the master key, or the open loopback mode."""
    return f"key:{principal.key_id}" if principal.kind == "key" else principal.kind


def responses_of(st: ServerState) -> ResponseStore:
    store = st.responses
    if store is None:  # built on first use when the app was assembled without one (tests)
        store = st.responses = ResponseStore(st.backend.store)
    return store  # type: ignore[no-any-return]


@endpoint("openai", api=API)
async def create(request: Request, st: ServerState) -> Response:
    principal = await st.authenticate(request)
    req = parse_request(await st.read_json(request))
    ctx = await st.admit(request, principal, req.model)
    owner = owner_of(principal)
    store = responses_of(st)
    private_item = await resolve_item_references(req, store, owner)
    if private_item is not None and ctx.privacy != LOCAL_ONLY:   # a private turn's item replayed: it stays local
        ctx.privacy = LOCAL_ONLY
        ctx.privacy_rule = f"the item_reference {private_item!r} (an item of a response that ran local-only)"
    passthrough = _openai_responses_only(st, req.model)
    if req.builtin_tools and not passthrough:
        kind = req.builtin_tools[0].get("type")
        index = next(i for i, t in enumerate(req.echo["tools"]) if t is req.builtin_tools[0])
        raise bad(f"tools[{index}].type", f"the built-in tool {kind!r} is run only by OpenAI's Responses API; "
                                          f"model {req.model!r} is served by another provider. Use function tools, "
                                          "or an openai-responses/... model")
    refused = None if passthrough else builtin_item_refused(req.input_items, req.model, req.references)
    if refused is not None:
        raise refused
    history: list[dict[str, Any]] = []
    if req.previous_response_id is not None:
        history, local_only = await store.history(req.previous_response_id, owner)
        if local_only and ctx.privacy != LOCAL_ONLY:   # the private turns are replayed: they stay local
            ctx.privacy = LOCAL_ONLY
            ctx.privacy_rule = (f"the conversation of previous_response_id {req.previous_response_id!r} "
                                "(a turn of it ran local-only)")
    if req.store and (why := await st.backend.store_refusal(req.model, ctx)) is not None:
        raise bad("store", f"{why}: a stored response would keep this conversation there. Send \"store\": false "
                           "(and the earlier turns as input instead of previous_response_id), or set [store] url "
                           "to a database on this machine or network")
    decision = st.backend.privacy_of(req.model, ctx)
    privacy = LOCAL_ONLY if decision is not None and decision.local_only else None
    if passthrough:
        req.relayed()
    chat = req.chat_request(history, relay=passthrough)
    chat.raw_events = passthrough
    model = req.model
    response_id = new_id("resp_")
    created = int(time.time())
    if req.stream:
        own = ResponsesStreamEncoder(req, response_id=response_id, model=model, created_at=created)
        encoder: ResponsesStreamEncoder | PassthroughEncoder = PassthroughEncoder(req, own) if passthrough else own
        events = _completing(st.backend.astream(model, chat, ctx), encoder, store,
                             _row(st, req, response_id, owner, privacy) if req.store else None)
        return await serve_stream(st, request, "openai", model, events, encoder, ctx)
    resp = await st.until_disconnect(request, st.backend.achat(model, chat, ctx))
    out = relayed(req, resp) if passthrough else None
    if out is None:
        out = completed_object(req, resp, response_id=response_id, model=model, created_at=created,
                               completed_at=int(time.time()))
    if req.store:
        row = _row(st, req, str(out.get("id") or response_id), owner, privacy, out)
        row.provider = reasoning_provider(resp)
        await store.save(row)
    st.done(request, model, resp.provider, upstream=upstream_ms(resp.metadata), usage=resp.usage, cost=resp.cost,
            cache=ctx.cache_result)
    return json_response(out, headers=call_headers(ctx, resp.metadata.target, "openai",
                                                   resp.metadata.request_id))


async def _completing(events: AsyncIterator[StreamEvent], encoder: ResponsesStreamEncoder | PassthroughEncoder,
                      store: ResponseStore,
                      row: StoredResponse | None) -> AsyncIterator[StreamEvent]:
    """The gateway's events, then — once the last one is encoded — the finished Response
    built and stored, before the stream's ``finish`` sends ``response.completed``."""
    try:
        async for ev in events:
            yield ev
        final = encoder.complete(int(time.time()))
        if row is not None:
            row.response, row.provider = final, encoder.provider
            row.id = str(final.get("id") or row.id)  # a relayed Response keeps OpenAI's id
            await store.save(row)
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def _row(st: ServerState, req: ResponsesRequest, response_id: str, owner: str, privacy: str | None,
         response: dict[str, Any] | None = None) -> StoredResponse:
    now = time.time()
    days = _retention_days(st, req.model)
    return StoredResponse(id=response_id, owner=owner, created_at=now,
                          expires_at=now + days * DAY if days else None, model=req.model, provider=None,
                          previous_response_id=req.previous_response_id, input_items=req.input_items,
                          response=response or {}, privacy=privacy)


def _retention_days(st: ServerState, model: str) -> int | None:
    """The registry entry's ``data_retention_days``, else ``[store] data_retention_days``."""
    entry = st.backend.engine.registry.get(model)
    if entry is not None and entry.data_retention_days:
        return int(entry.data_retention_days)
    config = getattr(st.backend.gateway, "config", None)
    days = getattr(getattr(config, "store", None), "data_retention_days", None)
    return int(days) if days else None


def _openai_responses_only(st: ServerState, model: str) -> bool:
    router = getattr(st.backend.gateway, "router", None)
    if router is None:
        return False
    try:
        targets = router.targets(router.route(model))
    except Exception:  # noqa: BLE001 - a target that does not resolve is not OpenAI's Responses API
        return False
    return bool(targets) and all(getattr(t.target.spec, "kind", None) == "openai_responses" for t in targets)


@endpoint("openai", api=API)
async def retrieve(request: Request, st: ServerState) -> Response:
    principal = await st.authenticate(request)
    if request.query_params.get("stream", "false").lower() == "true":
        raise bad("stream", "streaming a stored response is not supported (there is no background mode); "
                            "retrieve it without stream")
    row = await responses_of(st).get(request.path_params["response_id"], owner_of(principal))
    return json_response(row.response)


@endpoint("openai", api=API)
async def delete(request: Request, st: ServerState) -> Response:
    principal = await st.authenticate(request)
    response_id = request.path_params["response_id"]
    await responses_of(st).delete(response_id, owner_of(principal))
    return json_response({"id": response_id, "object": "response", "deleted": True})


@endpoint("openai", api=API)
async def cancel(request: Request, st: ServerState) -> Response:
    """OpenAI cancels only a background response, and the gateway runs none (``background: true``
    is refused), so a stored response has finished: a 400 that says so, as OpenAI answers for a
    response made without ``background``. An unknown one is a 404, as for ``GET``."""
    principal = await st.authenticate(request)
    response_id = request.path_params["response_id"]
    await responses_of(st).get(response_id, owner_of(principal))
    raise bad("response_id", f"response {response_id!r} cannot be cancelled: only background responses can be, "
                             "and the gateway runs none (background mode is not supported), so it has already "
                             "finished")


@endpoint("openai", api=API)
async def input_items(request: Request, st: ServerState) -> Response:
    """The items the response was generated from: the conversation before it, then its input."""
    principal = await st.authenticate(request)
    owner = owner_of(principal)
    store = responses_of(st)
    row = await store.get(request.path_params["response_id"], owner)
    query = request.query_params
    limit = _limit(query.get("limit"))
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad("order", "expected 'asc' or 'desc'")
    items = list(row.input_items)
    if row.previous_response_id is not None:
        try:
            items = (await store.history(row.previous_response_id, owner)).items + items
        except ApiError:  # an earlier response deleted or expired: list what is left
            pass
    if order == "desc":
        items.reverse()
    after = query.get("after")
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise bad("after", f"no item {after!r} in this response's input")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    return json_response({"object": "list", "data": page, "has_more": len(items) > limit,
                          "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None})


def _limit(raw: str | None) -> int:
    return query_int(raw, "limit", 20, 1, 100)


routes = [
    Route("/v1/responses", create, methods=["POST"]),
    Route("/v1/responses/{response_id}", retrieve, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", input_items, methods=["GET"]),
    Route("/v1/responses/{response_id}/cancel", cancel, methods=["POST"]),
]
