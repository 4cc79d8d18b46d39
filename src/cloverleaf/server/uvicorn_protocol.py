"""``--http uvicorn``: uvicorn's own httptools protocol, held to what the server promises.

The mode exists to compare ours (:mod:`.h1_server`) with uvicorn's protocol, so this is a
small subclass, not a fork: uvicorn parses, frames and keeps connections alive as it always
does. It differs from h1 where README says (no header or write timeout, no eviction, and the
other points listed there), but not where a client would get a wrong answer. Three places
where uvicorn's protocol did, fixed here:

- a request still running when the graceful shutdown period ends (uvicorn cancels its task)
  was a text/plain ``500`` with an "Exception in ASGI application" traceback in the log; it
  is answered as under h1 (:mod:`.shutdown_cut`): a ``503`` in the API's error shape with
  ``Retry-After``, or, a response under way, the connection closed (a stream has already
  sent its error event, :class:`~.streaming.EventStream`), and one warning logged;
- an ``Upgrade`` header (``curl --http2`` sends ``Connection: Upgrade, HTTP2-Settings`` and
  ``Upgrade: h2c``) made llhttp hand the connection over right after the head, skipping the
  body, so the app saw none (a ``400`` "the request body is empty"); we upgrade to nothing,
  as h1: the body is read per its Content-Length, the request served over HTTP/1.1 and the
  connection closed after it, nothing after the body parsed (no request smuggling);
  CONNECT, and a chunked body with ``Upgrade`` (no length to read by), are a ``400``;
- an HTTP/1.0 client asking for a stream got ``transfer-encoding: chunked``, which HTTP/1.0
  does not know (RFC 9112 §6.1: a server MUST NOT send it); the body goes unframed, ended by
  the close (uvicorn already closes every HTTP/1.0 connection after its answer).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from .shutdown_cut import log_cut, shutdown_answer

Send = Any  # uvicorn's ASGISendCallable; the messages are plain dicts here


def fits_this_uvicorn() -> bool:
    """Whether the installed uvicorn still has the internals the subclass below builds on (they
    are not public API): if a release renames them, ``--http uvicorn`` runs uvicorn's own
    protocol unchanged rather than failing on the first request."""
    return all(callable(getattr(HttpToolsProtocol, name, None))
               for name in ("_start_asgi_task", "_unset_keepalive_if_required", "_should_upgrade",
                            "handle_websocket_upgrade", "send_400_response")) and all(
        name in RequestResponseCycle.__init__.__code__.co_names
        for name in ("chunked_encoding", "expected_content_length", "response_started", "disconnected"))


class UvicornProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the three fixes of the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closing = False  # graceful shutdown has begun
        # -1 while requests are parsed; after an Upgrade, the bytes of that request's body
        # still to come (0: the body is in, whatever follows is dropped)
        self.body_left = -1

    def data_received(self, data: bytes) -> None:
        if self.body_left >= 0:
            self._raw_body(data)
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade as exc:
            if self._should_upgrade():  # a WebSocket, when ``ws`` is on (``cloverleaf serve`` has it off)
                self.handle_websocket_upgrade()
            else:
                self._serve_plain(data[exc.args[0]:])

    def on_headers_complete(self) -> None:
        if self.parser.should_upgrade() and not self._should_upgrade() and self._unservable_upgrade():
            # answered 400 in its turn (after the requests pipelined before it): this
            # request's app is the refusal, the connection's stays
            app, self.app = self.app, _refuse_upgrade
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()

    def _unservable_upgrade(self) -> bool:
        return self.parser.get_method() == b"CONNECT" or any(name == b"transfer-encoding" for name, _ in self.headers)

    def _serve_plain(self, rest: bytes) -> None:
        """llhttp stopped after the head of a request with ``Upgrade`` (and said its message
        was complete, skipping the body): read the body here, close after the answer."""
        cycle = self.cycle
        cycle.keep_alive = False
        if self._unservable_upgrade():
            self.body_left = 0  # refused (see on_headers_complete): nothing more is read
            return
        length = next((int(value) for name, value in self.headers if name == b"content-length"), 0)
        cycle.more_body = length > 0
        self.body_left = length
        self._raw_body(rest)

    def _raw_body(self, data: bytes) -> None:
        left = self.body_left
        if left <= 0 or not data:
            return
        part = data[:left]
        self.body_left = left - len(part)
        self.on_body(part)
        if self.body_left == 0:
            self.on_message_complete()

    def shutdown(self) -> None:
        self.closing = True
        super().shutdown()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        super()._start_asgi_task(cycle, functools.partial(self._run, cycle, app))

    async def _run(self, cycle: RequestResponseCycle, app: Any, scope: Any, receive: Any, send: Send) -> None:
        """The app, and the answer when the server cancels it (see the module docstring)."""
        if scope["http_version"] == "1.0":
            send = _Http10Send(cycle, send)
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            if cycle.disconnected:
                return  # the client has gone: nobody to tell
            log_cut(scope, self.closing, cycle.response_started, cycle.response_complete)
            if not cycle.response_started:
                headers, body = shutdown_answer(scope)
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
            elif not cycle.response_complete:
                cycle.transport.close()
                cycle.disconnected = True  # uvicorn would log the cut response as the app's error


async def _refuse_upgrade(scope: Any, receive: Any, send: Send) -> None:
    """CONNECT, or a chunked body with ``Upgrade``: a 400, as under h1."""
    from .errors import ApiError, error_body

    why = "CONNECT is not served" if scope["method"] == "CONNECT" else "a chunked body with an Upgrade header"
    body = error_body(ApiError(f"malformed HTTP request ({why}); the connection is closed", status=400,
                               kind="invalid_request", code="bad_http_request"), "openai")
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Http10Send:
    """``send`` for an HTTP/1.0 request: a body without a Content-Length goes unframed.

    uvicorn frames such a body ``chunked`` whatever the request's version. It frames nothing
    once ``chunked_encoding`` is decided False, but then counts the body against a declared
    length: each message's length is declared to it as it goes (one byte more while more
    follows, so the count reaches zero with the last)."""

    __slots__ = ("cycle", "send", "unframed")

    def __init__(self, cycle: RequestResponseCycle, send: Send) -> None:
        self.cycle = cycle
        self.send = send
        self.unframed = False

    async def __call__(self, message: dict[str, Any]) -> None:
        cycle = self.cycle
        if message["type"] == "http.response.start":
            headers = [(n, v) for n, v in message.get("headers") or () if n.lower() != b"transfer-encoding"]
            if (cycle.scope["method"] != "HEAD" and message["status"] not in (204, 304)
                    and not any(n.lower() == b"content-length" for n, _ in headers)):
                cycle.chunked_encoding = False
                self.unframed = True
            message = {**message, "headers": headers}
        elif self.unframed and message["type"] == "http.response.body":
            more = message.get("more_body", False)
            cycle.expected_content_length = len(message.get("body", b"")) + (1 if more else 0)
        await self.send(message)
