"""The per-call headers the server reads and writes beyond each API's own.

In: ``Cache-Control`` (``no-store``: this call neither reads nor writes the response cache;
``no-cache``: ask the provider again and store the new answer, as HTTP caches do) and W3C
``traceparent`` (OpenTelemetry continues the caller's trace).
Out: ``x-cloverleaf-target`` (which target answered), ``x-cloverleaf-cache`` (``hit`` or
``miss`` when the cache was consulted) and ``x-cloverleaf-cache-similarity`` on a hit.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._context import CallContext


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


def call_headers(ctx: CallContext | None, target: str | None) -> dict[str, str] | None:
    out: dict[str, str] = {}
    if target and target.isascii() and target.isprintable():
        out["x-cloverleaf-target"] = target
    if ctx is not None and ctx.cache_result is not None:
        out["x-cloverleaf-cache"] = ctx.cache_result
        if ctx.cache_similarity is not None:
            out["x-cloverleaf-cache-similarity"] = f"{ctx.cache_similarity:.4f}"
    return out or None
