"""The engine's side of :mod:`cloverleaf.providers.bearer`: a token on what the adapter built.

A target whose adapter names a :class:`~cloverleaf.providers.bearer.BearerSource` (Vertex AI
with Google credentials) gets ``Authorization: Bearer <token>`` on every request built for it,
after ``build_*`` has refused whatever it refuses (so a call the provider cannot take costs no
token exchange). The token request goes through the engine's transport, sync or async as the
call is, with the target's retries and its local-only peer check and head cap: it is an HTTP
call of that target like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ._http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from ._resolve import Target
    from .transport.auto import Transport

Built = TypeVar("Built", bound=HttpRequest | list[HttpRequest])


def authorized(built: Built, target: Target, transport: Transport) -> Built:
    """``built`` carrying the target's bearer token, fetched (blocking) when none is fresh."""
    source = target.adapter.bearer_source(target.cfg)
    if source is None:
        return built

    def send(req: HttpRequest) -> HttpResponse:
        return transport.send(_as_target(req, target), max_retries=target.cfg.max_retries)

    return _with_token(built, source.token(send))


async def aauthorized(built: Built, target: Target, transport: Transport) -> Built:
    """:func:`authorized` for async calls: concurrent callers share one refresh."""
    source = target.adapter.bearer_source(target.cfg)
    if source is None:
        return built

    async def send(req: HttpRequest) -> HttpResponse:
        return await transport.asend(_as_target(req, target), max_retries=target.cfg.max_retries)

    return _with_token(built, await source.atoken(send))


def _as_target(req: HttpRequest, target: Target) -> HttpRequest:
    req.peer_check = target.peer_check
    req.head_timeout = target.head_timeout
    req.timeout = target.cfg.timeout
    return req


def _with_token(built: Built, token: str) -> Built:
    for req in built if isinstance(built, list) else [built]:
        req.headers["authorization"] = f"Bearer {token}"
    return built
