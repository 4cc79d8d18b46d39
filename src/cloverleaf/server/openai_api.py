"""The OpenAI-compatible routes: ``/v1/chat/completions``, ``/v1/embeddings``,
``/v1/images/generations``, ``/v1/models`` (and ``/v1/models/{id}``).

Each route is the same short pipeline (see :mod:`.state`); the translation is in
:mod:`.openai_wire`. The ``model`` in a response is the name the client asked for (a route
or alias stays an alias); ``x-cloverleaf-target`` says which target actually answered.

The model routes are split in two: the route authenticates and reads the body, ``serve_*``
does the rest, so :mod:`.azure_api`'s paths (another credential header, the model from the
URL) serve the same calls without a copy of them.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._capabilities import Capability
from . import anthropic_wire as aw
from . import openai_wire as ow
from .auth import Principal
from .call_headers import call_headers
from .errors import BadRequest
from .http_io import json_response
from .keys import model_allowed
from .openai_stream import ChatChunkEncoder
from .state import ServerState, endpoint, new_id, upstream_ms, wants_anthropic
from .streaming import serve_stream


@endpoint("openai")
async def chat_completions(request: Request, st: ServerState) -> Response:
    return await serve_chat(request, st, await st.authenticate(request), await st.read_json(request))


async def serve_chat(request: Request, st: ServerState, principal: Principal, body: dict[str, Any]) -> Response:
    req, include_usage = ow.parse_chat_request(body)
    ctx = await st.admit(request, principal, req.model)
    model = req.model
    created = int(time.time())
    if req.stream:
        encoder = ChatChunkEncoder(response_id=new_id("chatcmpl-"), model=model, created=created,
                                   include_usage=include_usage)
        return await serve_stream(st, request, "openai", model, st.backend.astream(model, req, ctx), encoder, ctx)
    resp = await st.until_disconnect(request, st.backend.achat(model, req, ctx))
    rid = resp.metadata.response_id
    out = ow.chat_completion(resp, response_id=rid if rid and rid.startswith("chatcmpl") else new_id("chatcmpl-"),
                             model=model, created=created)
    st.done(request, model, resp.provider, upstream=upstream_ms(resp.metadata), usage=resp.usage, cost=resp.cost,
            cache=ctx.cache_result)
    return json_response(out, headers=call_headers(ctx, resp.metadata.target, "openai",
                                                   resp.metadata.request_id))


@endpoint("openai")
async def embeddings(request: Request, st: ServerState) -> Response:
    return await serve_embeddings(request, st, await st.authenticate(request), await st.read_json(request))


async def serve_embeddings(request: Request, st: ServerState, principal: Principal, body: dict[str, Any]) -> Response:
    req, encoding = ow.parse_embedding_request(body)
    ctx = await st.admit(request, principal, req.model, Capability.EMBEDDINGS)
    resp = await st.until_disconnect(request, st.backend.aembed(req.model, req, ctx))
    st.done(request, req.model, resp.provider, upstream=upstream_ms(resp.metadata), usage=resp.usage, cost=resp.cost)
    return json_response(ow.embedding_response(resp, model=req.model, encoding=encoding),
                         headers=call_headers(ctx, resp.metadata.target, "openai", resp.metadata.request_id))


@endpoint("openai")
async def images(request: Request, st: ServerState) -> Response:
    return await serve_images(request, st, await st.authenticate(request), await st.read_json(request))


async def serve_images(request: Request, st: ServerState, principal: Principal, body: dict[str, Any]) -> Response:
    req = ow.parse_image_request(body)
    if not req.model:
        req.model = st.backend.settings.image_model or ""
        if not req.model:
            raise BadRequest("model: required (this server has no default image_model)", param="model")
    ctx = await st.admit(request, principal, req.model, Capability.IMAGE_GENERATION)
    resp = await st.until_disconnect(request, st.backend.aimage(req.model, req, ctx))
    st.done(request, req.model, resp.provider, upstream=upstream_ms(resp.metadata), usage=resp.usage, cost=resp.cost)
    headers = call_headers(ctx, resp.metadata.target, "openai", resp.metadata.request_id)
    if resp.incomplete:   # part of a split call failed: the images made, and a word of the rest
        headers["x-cloverleaf-incomplete"] = header_text(resp.incomplete)
    return json_response(ow.images_response(resp, created=int(time.time()), want=req.response_format),
                         headers=headers)


def header_text(text: str, most: int = 500) -> str:
    """``text`` as a header value may carry it: printable ASCII, one line, at most ``most`` characters."""
    flat = "".join(c if c.isascii() and c.isprintable() else "?" for c in " ".join(text.split()))
    return flat[:most]


@endpoint("openai", versioned=True)
async def list_models(request: Request, st: ServerState) -> Response:
    """The models this key may use, in OpenAI's shape, or Anthropic's to a client that sends
    ``anthropic-version`` (with Anthropic's ``limit`` / ``after_id`` / ``before_id`` paging)."""
    principal = await st.authenticate(request)
    listed = st.backend.listed_models()
    if principal.policy is not None and principal.policy.allowed_models:
        listed = [(name, owner) for name, owner in listed if model_allowed(principal.policy.allowed_models, name)]
    if wants_anthropic(request):
        return json_response(aw.models_page([name for name, _ in listed], st.started_at, request.query_params))
    created = int(st.started_at)
    return json_response(ow.models_list([ow.model_object(name, owned_by=owner, created=created)
                                         for name, owner in listed]))


@endpoint("openai", versioned=True)
async def get_model(request: Request, st: ServerState) -> Response:
    name = request.path_params["model"]
    principal = await st.authenticate(request)
    principal.check_model(name)
    await st.backend.check_model(name)
    if wants_anthropic(request):
        return json_response(aw.model_info(name, st.started_at))
    owner = dict(st.backend.listed_models()).get(name) or name.partition("/")[0] or "cloverleaf"
    return json_response(ow.model_object(name, owned_by=owner, created=int(st.started_at)))


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/images/generations", images, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
