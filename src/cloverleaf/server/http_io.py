"""Reading request bodies safely and writing JSON, once each.

``read_json`` is the one way a route reads its body:

- the body must be declared JSON (``Content-Type: application/json``). Besides being what
  both APIs require, this is a CSRF wall: a web page can make a browser POST ``text/plain``
  or a form to ``http://127.0.0.1:4000`` without asking, but not ``application/json``;
- the size cap is enforced *while reading* (a declared ``Content-Length`` over the cap is
  refused before a byte is read; a chunked body is cut off as soon as it passes the cap);
- the whole body must arrive within ``deadline`` seconds (``[server] body_timeout_seconds``), so a client that sends half a
  body and stalls (slowloris) is answered 408 instead of holding a task forever (the server
  passes its one :class:`~.deadlines.BodyDeadlines` watchdog; without it, ``asyncio.timeout``);
- a 408 or 413 says ``connection: close`` and the server closes the connection after it:
  the rest of that body is never read, so nothing after it could be parsed as a request;
- a client that hangs up mid-body is :class:`~.errors.ClientClosed` (499, nothing to log);
- it parses exactly once, and refuses (400 ``json_too_deep``) a body nested more than
  ``jsoncodec.MAX_DEPTH`` (128) levels before parsing it: everything after the parse
  recurses once per level, so depth is bounded where the bytes come in. Lone UTF-16 surrogates (``"\\ud800"``), which JSON allows but
  UTF-8 cannot carry to any provider, are a 400 here rather than a confusing upstream error;
  so are bytes that are not UTF-8 (``ED B3 BF``, a lone surrogate encoded as if it were text, once
  parsed into a model name that no database, metrics page or answer could encode again).

``json_response`` serialises exactly once, compactly; ``dumps_text`` and ``tally_usage``
are the two helpers both stream encoders share.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .. import _jsoncodec as jsoncodec
from .._types import StreamEvent, Usage
from .deadlines import BodyDeadlineExceeded, BodyDeadlines
from .errors import ApiError, BadRequest, ClientClosed, PayloadTooLarge
from .fields import too_deep

JSON_TYPE = "application/json"
#: on a 408 or 413: the rest of the body is not read, so the connection cannot carry another
#: request (RFC 9110 §15.5.9); the server closes it after the answer
CLOSE = {"connection": "close"}


async def read_json(request: Request, limit: int, deadline: float,
                    deadlines: BodyDeadlines | None = None) -> dict[str, Any]:
    headers = request.headers
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("invalid Content-Length header") from None
        if size > limit:
            raise _too_large(limit)
    _check_content_type(headers.get("content-type"))
    encoding = headers.get("content-encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):   # RFC 9110: 415
        raise ApiError(f"request bodies sent with 'Content-Encoding: {encoding[:40]}' are not accepted; send the "
                       "JSON uncompressed", status=415, kind="invalid_request", code="unsupported_content_encoding")
    try:
        if deadlines is not None:
            raw = await deadlines.run(_read(request, limit), deadline)
        else:
            async with asyncio.timeout(deadline):
                raw = await _read(request, limit)
    except (TimeoutError, BodyDeadlineExceeded):
        raise ApiError(f"the request body did not arrive within {deadline:g} seconds", status=408,
                       kind="invalid_request", code="request_timeout", headers=dict(CLOSE)) from None
    except ClientDisconnect:
        raise ClientClosed("the client closed the connection while sending its request") from None
    if not raw:
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        body = jsoncodec.loads_bounded(raw)
    except jsoncodec.JSONTooDeep as exc:
        raise too_deep("the request body", exc.limit) from None
    except jsoncodec.NonFiniteNumber as exc:
        raise BadRequest(f"the request body holds a number no 64-bit float can hold: {exc.literal} (JSON has no "
                         "NaN or Infinity); send a finite number, or leave out a bound this large",
                         code="invalid_number") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the request body is not valid {_encoding_name(exc)} text (bad bytes at offset "
                         f"{exc.start}); send JSON encoded as UTF-8", code="invalid_unicode") from None
    except (ValueError, RecursionError):
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    # (``find``, not ``in``: ``bytes in bytes`` builds and drops a TypeError first, in CPython 3.11)
    if (raw.find(b"\\ud") != -1 or raw.find(b"\\uD") != -1) and _has_lone_surrogate(body):
        raise BadRequest("the request body contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), "
                         "which is not valid Unicode text", code="invalid_unicode")
    return body


async def _read(request: Request, limit: int) -> bytes:
    """The body straight from ``receive`` (no generator in between); usually one message."""
    receive = request.receive
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            continue
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if not more and not chunks:
            if len(chunk) > limit:
                raise _too_large(limit)
            return chunk  # type: ignore[no-any-return]
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)


def _check_content_type(value: str | None) -> None:
    media = (value or "").partition(";")[0].strip().lower()
    if media != JSON_TYPE and not (media.startswith("application/") and media.endswith("+json")):
        raise ApiError(f"the request body must be JSON sent with 'Content-Type: application/json' "
                       f"(got {media or 'no content type'!r})", status=415, kind="invalid_request",
                       code="unsupported_media_type")


def _encoding_name(exc: UnicodeDecodeError) -> str:
    return exc.encoding.upper().replace("_", "-").removesuffix("-LE").removesuffix("-BE")


def _has_lone_surrogate(body: dict[str, Any]) -> bool:
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than the server's limit of {limit} bytes "
                           f"([server] max_body_mb)", code="request_too_large", headers=dict(CLOSE))


#: Every response and stream chunk is serialised through these (see :mod:`cloverleaf._jsoncodec`).
dumps_text = jsoncodec.dumps_text
dumps = jsoncodec.dumps


def tally_usage(total: Usage, ev: StreamEvent) -> None:
    """Fold the usage a ``usage`` or ``done`` event carries into a stream's running total
    (a later non-zero count wins)."""
    for update in (ev.usage, ev.response.usage if ev.response is not None else None):
        if update is not None:
            total.input_tokens = update.input_tokens or total.input_tokens
            total.output_tokens = update.output_tokens or total.output_tokens
            total.cached_tokens = update.cached_tokens or total.cached_tokens
            total.cache_write_tokens = update.cache_write_tokens or total.cache_write_tokens
            total.reasoning_tokens = update.reasoning_tokens or total.reasoning_tokens


class JSONBytes(Response):
    """A JSON response whose headers are built directly: Starlette's ``init_headers`` (which
    re-checks names and media types meant for any body) was measurable on the hot path."""

    media_type = JSON_TYPE

    def __init__(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        raw = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
        if headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.raw_headers = raw


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``payload`` as a JSON answer; a lone surrogate in it (a name no UTF-8 can carry, held
    from a provider or from before requests were checked) is written as U+FFFD, not a 500."""
    return JSONBytes(jsoncodec.dumps_replacing(payload), status, headers)
