"""The per-call headers the server reads and writes beyond each API's own.

In: ``Cache-Control`` (``no-store``: this call neither reads nor writes the response cache;
``no-cache``: ask the provider again and store the new answer, as HTTP caches do), W3C
``traceparent`` and ``tracestate`` (OpenTelemetry continues the caller's trace, and the
provider's request carries it on) and ``anthropic-beta`` (beta
features by name, comma-separated, as Anthropic's SDK sends ``betas=[...]`` and Claude Code its
own: added to the configured ones when the target is Anthropic's API, ignored by every other
provider; client input, so a malformed or oversized list is a 400, on any endpoint).
Out: ``x-cloverleaf-target`` (which target answered), ``x-cloverleaf-cache`` (``hit`` or
``miss`` when the cache was consulted) and ``x-cloverleaf-cache-similarity`` on a hit; and on
every answer of the model APIs, errors included, the request's id where each API's SDK reads it
(:data:`REQUEST_ID_HEADERS`): the provider's own id for the call when it gave one (what its support
asks for), else the gateway's call id (what the traces and the dashboard find the call by), else a
fresh one (a request refused before the gateway opened its record).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from .._context import CallContext
from .errors import BadRequest, Flavor

#: Where each API's SDK reads a request's id: the OpenAI SDK's ``x-request-id`` (its
#: ``response._request_id`` and ``APIStatusError.request_id``), the Anthropic SDK's ``request-id``.
REQUEST_ID_HEADERS: dict[str, str] = {"openai": "x-request-id", "anthropic": "request-id"}
#: An upstream's id passed on as a header: printable ASCII, no spaces, not too long.
_UPSTREAM_ID = re.compile(r"[\x21-\x7e]{1,200}")

BETA_HEADER = "anthropic-beta"
#: Beta names as Anthropic spells them (``context-1m-2025-08-07``), and how many one call may ask for.
_BETA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_BETAS = 32


def cache_directive(headers: Mapping[str, str]) -> bool | str | None:
    value = headers.get("cache-control")
    if not value:
        return None
    tokens = {t.strip().lower().partition("=")[0] for t in value.split(",")}
    if "no-store" in tokens:
        return False
    if "no-cache" in tokens or "max-age" in tokens and "max-age=0" in value.replace(" ", "").lower():
        return "refresh"
    return None


def traceparent(headers: Mapping[str, str]) -> str | None:
    value = headers.get("traceparent")
    # version-traceid-spanid-flags: 55 characters; anything else is ignored, never an error
    return value if value and len(value) == 55 and value.isascii() else None


#: W3C: a vendor may drop a ``tracestate`` longer than this rather than pass it on
MAX_TRACESTATE = 512


def tracestate(headers: Mapping[str, str]) -> str | None:
    """The ``tracestate`` that goes with a ``traceparent`` (read only when there is one), passed
    on to the provider unchanged; one that is too long or not printable ASCII is dropped, never
    an error (as the trace-context rules let a vendor)."""
    value = headers.get("tracestate")
    return value if value and len(value) <= MAX_TRACESTATE and value.isascii() and value.isprintable() else None


def client_betas(values: list[str]) -> tuple[str, ...]:
    """The beta names of every ``anthropic-beta`` header of a request, each once, in order."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    for name in names:
        if not _BETA_NAME.fullmatch(name):
            raise BadRequest(f"header {BETA_HEADER}: {name[:80]!r} is not a beta name; send comma-separated names "
                             "such as context-1m-2025-08-07 (letters, digits, '-', '.', '_'; at most 64 characters)",
                             param=BETA_HEADER, code="invalid_beta_header")
    unique = tuple(dict.fromkeys(names))
    if len(unique) > MAX_BETAS:
        raise BadRequest(f"header {BETA_HEADER}: {len(unique)} beta names; send at most {MAX_BETAS}",
                         param=BETA_HEADER, code="invalid_beta_header")
    return unique


def request_id(ctx: CallContext | None, upstream: str | None = None) -> str:
    """The request's id for its client (see the module): ``upstream``, the provider's, unless the
    answer came from the cache (that id is another call's), else the gateway's call id."""
    if upstream and _UPSTREAM_ID.fullmatch(upstream) and (ctx is None or ctx.cache_result != "hit"):
        return upstream
    if ctx is not None and ctx.call_id:
        return ctx.call_id
    return f"req_{os.urandom(12).hex()}"


def call_headers(ctx: CallContext | None, target: str | None, flavor: Flavor,
                 upstream_id: str | None = None) -> dict[str, str]:
    """The headers above for a model API's answer (``upstream_id``: the provider's request id)."""
    out = {REQUEST_ID_HEADERS[flavor]: request_id(ctx, upstream_id)}
    if target and target.isascii() and target.isprintable():
        out["x-cloverleaf-target"] = target
    if ctx is not None and ctx.cache_result is not None:
        out["x-cloverleaf-cache"] = ctx.cache_result
        if ctx.cache_similarity is not None:
            out["x-cloverleaf-cache-similarity"] = f"{ctx.cache_similarity:.4f}"
    return out
