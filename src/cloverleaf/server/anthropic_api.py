"""The Anthropic-compatible routes: ``POST /v1/messages`` (JSON or SSE) and
``POST /v1/messages/count_tokens``, for any backend provider.

The translation is in :mod:`.anthropic_wire`; errors use Anthropic's error shape
(``{"type": "error", "error": {"type": ..., "message": ...}}``) so the Anthropic SDK raises
its usual exception classes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import anthropic_wire as aw
from .anthropic_stream import MessageStreamEncoder
from .call_headers import call_headers
from .http_io import json_response
from .state import ServerState, endpoint, new_id, upstream_ms
from .streaming import serve_stream


@endpoint("anthropic")
async def messages(request: Request, st: ServerState) -> Response:
    principal = await st.authenticate(request)
    req = aw.parse_messages_request(await st.read_json(request))
    ctx = await st.admit(request, principal, req.model)
    model = req.model
    if req.stream:
        encoder = MessageStreamEncoder(message_id=new_id("msg_"), model=model)
        return await serve_stream(st, request, "anthropic", model, st.backend.astream(model, req, ctx), encoder, ctx)
    resp = await st.until_disconnect(request, st.backend.achat(model, req, ctx))
    rid = resp.metadata.response_id
    out = aw.message_json(resp, message_id=rid if rid and rid.startswith("msg_") else new_id("msg_"), model=model)
    st.done(request, model, resp.provider, upstream=upstream_ms(resp.metadata), usage=resp.usage, cost=resp.cost,
            cache=ctx.cache_result)
    return json_response(out, headers=call_headers(ctx, resp.metadata.target, "anthropic",
                                                   resp.metadata.request_id))


@endpoint("anthropic")
async def count_tokens(request: Request, st: ServerState) -> Response:
    """An estimate (about 4 characters a token), the same one the gateway uses for limits."""
    principal = await st.authenticate(request)
    body = await st.read_json(request)
    body.setdefault("max_tokens", 1)
    req = aw.parse_messages_request(body)
    await st.admit(request, principal, req.model)
    return json_response({"input_tokens": st.backend.engine.estimate_tokens(req)})


routes = [
    Route("/v1/messages", messages, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
]
