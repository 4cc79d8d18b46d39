"""CORS for the model APIs, for the origins ``[server] cors_origins`` names (:mod:`.cors_origins`).

A web app on another origin (the openai-node SDK with ``dangerouslyAllowBrowser``, the Anthropic
SDK with ``dangerouslyAllowBrowser``, the Vercel AI SDK in a client component, a playground) can
call the gateway only if the gateway answers the browser's CORS checks. It must not for every
origin: a gateway open on loopback would be spendable by any website its user visits. So:

- with no origins configured ``create_app`` leaves this layer out: no code runs per request, ``OPTIONS`` stays a 405 and no response carries a CORS header;
- only the model APIs (``/v1/...`` and Azure's ``/openai/...``) answer CORS; the admin API,
  the dashboard, ``/metrics`` and the probes never do, whatever the setting (the dashboard's
  session cookie must never be usable from another origin);
- a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin is a
  ``204`` allowing the methods the APIs have and the headers the page asked for (an allowed
  origin is trusted: it is the origin that is checked, and the server ignores headers it does
  not read; the SDKs send ``authorization``, ``x-api-key``, ``anthropic-*``, ``openai-*``,
  ``x-stainless-*`` and more, and users add their own); every other answer to it, errors and
  streams included, carries ``Access-Control-Allow-Origin``, ``Vary: Origin`` and
  ``Access-Control-Expose-Headers`` for the headers the SDKs and users read (request ids,
  ``retry-after``, ``x-should-retry``, rate-limit headers, ``x-cloverleaf-*``);
- a preflight from any other origin is a ``403`` in the API's error shape naming the setting
  (the browser then refuses the call; ``curl`` shows why); its other requests are served
  untouched, without CORS headers, so the browser hides the answer from the page;
- credentials (cookies) are never allowed: the APIs authenticate by header, and ``"*"`` answers
  ``Access-Control-Allow-Origin: *``, which browsers never combine with credentials;
- Chrome's Private Network Access preflight (a public site calling a gateway on loopback or a
  private address) is allowed for origins named exactly, never for ``"*"`` alone.

It is one pure-ASGI layer in front of the app both HTTP protocols serve (``h1`` and ``--http
uvicorn``), so both answer alike.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .cors_origins import ANY_ORIGIN
from .errors import ApiError, error_body

#: the model APIs: OpenAI's and Anthropic's paths, and Azure OpenAI's
API_PREFIXES = ("/v1/", "/openai/")
ALLOW_METHODS = b"GET, POST, DELETE"
#: seconds a browser may reuse a preflight's answer (Chromium caps it at 7200)
MAX_AGE = b"600"
#: response headers a page's script may read (a browser hides all but a few without this)
EXPOSED_HEADERS = (
    "x-request-id", "request-id", "retry-after", "retry-after-ms", "x-should-retry",
    "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-tokens-remaining",
    "x-cloverleaf-target", "x-cloverleaf-cache", "x-cloverleaf-cache-similarity", "x-cloverleaf-overhead-ms",
)
#: a header name (RFC 9110 token): what of ``Access-Control-Request-Headers`` is echoed
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_MAX_REQUESTED = 64


class CorsLayer:
    """The ASGI layer (see the module docstring). ``state`` is the app's, as on the dispatcher."""

    def __init__(self, app: Any, origins: tuple[str, ...]) -> None:
        self.app: ASGIApp = app
        self.state = app.state
        self.any = ANY_ORIGIN in origins
        self.origins = frozenset(o.encode("latin-1") for o in origins if o != ANY_ORIGIN)
        self.exposed = ", ".join(EXPOSED_HEADERS).encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        origin = asked_method = asked_headers = private_network = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name.startswith(b"access-control-request-"):
                if name == b"access-control-request-method":
                    asked_method = value
                elif name == b"access-control-request-headers":
                    asked_headers = value if asked_headers is None else asked_headers + b"," + value
                elif name == b"access-control-request-private-network":
                    private_network = value
        if origin is None:   # not a browser's cross-origin request: nothing to add
            await self.app(scope, receive, send)
            return
        named = origin in self.origins
        preflight = scope["method"] == "OPTIONS" and asked_method is not None
        if not (named or self.any):
            if preflight:
                await _refuse(scope, send, origin)
            else:
                await self.app(scope, receive, send)
            return
        allowed = origin if named else b"*"
        if preflight:
            await _preflight(send, allowed, asked_headers, named and private_network == b"true")
            return
        allow = [(b"access-control-allow-origin", allowed), (b"vary", b"Origin"),
                 (b"access-control-expose-headers", self.exposed)]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *allow]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _preflight(send: Send, allowed: bytes, asked_headers: bytes | None, private_network: bool) -> None:
    """The 204 for an allowed origin's preflight (``allowed``: the origin, or ``*``)."""
    headers = [(b"access-control-allow-origin", allowed),
               (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
               (b"access-control-allow-methods", ALLOW_METHODS), (b"access-control-max-age", MAX_AGE)]
    if asked_headers:
        names = [n.strip().lower() for n in asked_headers.split(b",")][:_MAX_REQUESTED]
        echoed = b", ".join(n for n in names if _TOKEN.fullmatch(n))
        if echoed:
            headers.append((b"access-control-allow-headers", echoed))
    if private_network:
        headers.append((b"access-control-allow-private-network", b"true"))
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _refuse(scope: Scope, send: Send, origin: bytes) -> None:
    """A preflight from an origin not allowed: a 403 saying which setting allows it."""
    shown = origin.decode("latin-1")[:200]
    err = ApiError(f"cross-origin requests from {shown!r} are not allowed: add that origin to [server] "
                   "cors_origins (or CLOVERLEAF_CORS_ORIGINS) to let its web pages call this gateway",
                   status=403, kind="permission", code="cors_origin_not_allowed")
    body = error_body(err, "anthropic" if scope["path"].startswith("/v1/messages") else "openai")
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                            (b"vary", b"Origin")]})
    await send({"type": "http.response.body", "body": body})
