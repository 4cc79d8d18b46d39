"""One request on an ``h1`` connection and its response: the ASGI ``receive`` and ``send``.

Split from :mod:`.h1_server`, which parses requests off the connection and decides when each
may start; a :class:`Cycle` is what the app sees of one of them: the body as it arrives, the
client leaving (``http.disconnect``, or a hang-up callback through :data:`HANGUP_EXTENSION`),
and its response framed — one write for a non-streaming answer, chunked for a body without a
length (unframed for HTTP/1.0), the head coalesced with the first chunk — and, when the server
itself cancels it at shutdown, a 503 in the API's error shape instead of a bare 500.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("cloverleaf.server")
#: the scope extension that takes a hang-up callback (see :meth:`Cycle.on_hangup`)
HANGUP_EXTENSION = "cloverleaf.hangup"
_BAD_NAME = re.compile(b'[\x00-\x20\x7f()<>@,;:\\[\\]={}\\\\"/?]')
#: Every byte a header value may not hold (a control other than tab, or DEL) maps to 0, any
#: other to 1: ``0 in value.translate(_VALUE_BYTES)`` checks a value in one C pass, a third of
#: what a regex search cost (ten searches a response were 1.5% of a request's instructions).
_VALUE_BYTES = bytes(0 if b < 0x20 and b != 0x09 or b == 0x7F else 1 for b in range(256))
#: Header names already found valid: an app sends the same few on every response, so each is
#: checked by :data:`_BAD_NAME` once. Capped, so an app that makes up names cannot grow it.
_VALID_NAMES: set[bytes] = set()
_VALID_NAMES_CAP = 512
_STATUS: dict[int, bytes] = {}


def _valid_name(name: bytes) -> bool:
    """Whether ``name`` is a header name (no control, space or separator); remembered when it is."""
    if _BAD_NAME.search(name):
        return False
    if type(name) is bytes and len(_VALID_NAMES) < _VALID_NAMES_CAP:
        _VALID_NAMES.add(name)
    return True


class Connection(Protocol):
    """What a cycle uses of its connection (:class:`~.h1_server.H1Protocol`)."""

    transport: Any
    server_state: Any
    closing: bool
    write_paused: bool

    def resume_reading(self) -> None: ...

    async def drain(self) -> None: ...

    def response_done(self, cycle: Cycle) -> None: ...


def status_line(code: int) -> bytes:
    line = _STATUS.get(code)
    if line is None:
        import http

        try:
            phrase = http.HTTPStatus(code).phrase
        except ValueError:
            phrase = ""
        line = _STATUS[code] = f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1")
    return line


class Cycle:
    """One request and its response: the ASGI ``receive`` and ``send``."""

    __slots__ = ("conn", "app", "scope", "keep_alive", "expect_continue", "body", "more_body", "disconnected",
                 "started", "complete", "chunked", "remaining", "head", "waiter", "head_only", "body_given",
                 "hangup")

    def __init__(self, conn: Connection, scope: dict[str, Any], keep_alive: bool, expect_continue: bool,
                 app: Any) -> None:
        self.conn = conn
        self.app = app
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.body = b""
        self.more_body = True
        self.body_given = False
        self.disconnected = False
        self.started = False
        self.complete = False
        self.chunked = False
        self.remaining = -1  # content-length still to send; -1 = not declared
        self.head = b""  # written with the first body message
        self.waiter: asyncio.Event | None = None
        self.head_only = scope["method"] == "HEAD"
        self.hangup: Callable[[], None] | None = None

    def on_hangup(self, callback: Callable[[], None] | None) -> bool:
        """Call ``callback`` (once) if the client hangs up before the response is complete;
        ``None`` withdraws it. False when the client is already gone: the callback is not
        kept, and the caller acts at once."""
        if self.disconnected:
            self.hangup = None
            return False
        self.hangup = callback
        return True

    def hang_up(self) -> None:
        """The client is gone (or the server cut it off): ``receive`` says ``http.disconnect``,
        ``send`` writes nothing, the hang-up callback runs."""
        self.disconnected = True
        hangup, self.hangup = self.hangup, None
        if hangup is not None:
            hangup()
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if not self.disconnected:
                await self._cut()
        except BaseException as exc:
            log.error("exception in the ASGI application", exc_info=exc)
            if not self.started and not self.disconnected:
                self.keep_alive = False
                await self.send({"type": "http.response.start", "status": 500,
                                 "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
                await self.send({"type": "http.response.body", "body": b"Internal Server Error"})
            elif not self.complete:
                self.conn.transport.close()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            if not self.complete and not self.disconnected:
                log.error("the ASGI application returned without completing its response")
                if not self.started:
                    self.keep_alive = False
                    await self.send({"type": "http.response.start", "status": 500, "headers": []})
                    await self.send({"type": "http.response.body", "body": b""})
                else:
                    self.conn.transport.close()
        finally:
            # the extension holds this cycle and the cycle its scope: a reference cycle that
            # only the garbage collector would free, with the request's body and everything
            # the route hung on the scope (measured: +7 MiB resident under load). Emptied, not
            # only removed: Starlette's router hands routes a copy of the scope sharing it.
            extensions = self.scope.pop("extensions", None)
            if extensions:
                extensions.pop(HANGUP_EXTENSION, None)
            self.hangup = None

    async def _cut(self) -> None:
        """The server cancelled this request, the client still there: uvicorn cancels what
        still runs when the graceful shutdown period ends. Not an error of the app: a 503 in
        the API's error shape, with Retry-After (another replica, or this one restarted, can
        serve it), or, a response under way, the connection closed."""
        scope = self.scope
        why = "the server's graceful shutdown period ended" if self.conn.closing else "the server cancelled it"
        log.warning("%s %s was cut short, still running when %s (%s)", scope["method"], scope["path"], why,
                    "answered 503" if not self.started else "response cut" if not self.complete else "response ended early")
        if self.started:
            if not self.complete:
                self.conn.transport.close()
            return
        from .errors import ApiError, error_body

        err = ApiError("the server is shutting down and stopped this request before it was answered; retry it",
                       status=503, kind="overloaded", code="server_shutting_down")
        anthropic = scope["path"].startswith("/v1/messages") or any(k == b"anthropic-version"
                                                                    for k, _ in scope["headers"])
        body = error_body(err, "anthropic" if anthropic else "openai")
        self.keep_alive = False
        await self.send({"type": "http.response.start", "status": 503,
                         "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                                     (b"content-length", b"%d" % len(body))]})
        await self.send({"type": "http.response.body", "body": body})

    async def receive(self) -> dict[str, Any]:
        if self.expect_continue and not self.disconnected:
            self.expect_continue = False
            if not self.started:
                self.conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not self.body_given:
            while not self.body and self.more_body and not self.disconnected:
                await self._wait()
            if self.disconnected:
                return {"type": "http.disconnect"}
            body, self.body = self.body, b""
            if self.more_body:
                self.conn.resume_reading()
                return {"type": "http.request", "body": body, "more_body": True}
            self.body_given = True
            return {"type": "http.request", "body": body, "more_body": False}
        # the whole body was read: the next event is the client leaving or the response ending
        while not (self.disconnected or self.complete):
            await self._wait()
        return {"type": "http.disconnect"}

    async def _wait(self) -> None:
        """Until the next :meth:`wake`. An ``Event`` (made only when someone waits), not a
        shared future: several tasks may wait at once (a disconnect watcher and a stream),
        and cancelling one of them must not cancel what the others wait on."""
        waiter = self.waiter
        if waiter is None:
            waiter = self.waiter = asyncio.Event()
        await waiter.wait()

    async def send(self, message: dict[str, Any]) -> None:
        conn = self.conn
        if conn.write_paused and not self.disconnected:
            await conn.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {kind!r}")
            self._start(message["status"], message.get("headers") or ())
            return
        if self.complete or kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r} after the response "
                               f"{'completed' if self.complete else 'started'}")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        head, self.head = self.head, b""
        if self.head_only:
            out = head
        elif self.chunked:
            out = head + (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + (b"" if more else b"0\r\n\r\n")
        else:
            if self.remaining >= 0:
                self.remaining -= len(body)
                if self.remaining < 0:
                    raise RuntimeError("response body longer than its Content-Length")
            out = head + body if head else body
        if out:
            conn.transport.write(out)
        if not more:
            if self.remaining > 0 and not self.head_only:
                conn.transport.close()
                raise RuntimeError("response body shorter than its Content-Length")
            self.complete = True
            self.wake()
            conn.response_done(self)

    def _start(self, status: int, headers: Any) -> None:
        self.started = True
        self.expect_continue = False
        parts = [status_line(status)]
        for name, value in self.conn.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        length = -1
        for name, value in headers:
            # (a bytearray name, which cannot be hashed, is checked every time)
            known = type(name) is bytes and name in _VALID_NAMES
            if not (known or _valid_name(name)) or 0 in value.translate(_VALUE_BYTES):
                raise RuntimeError("invalid character in a response header")
            lname = name.lower()
            if lname == b"content-length":
                length = int(value)
                continue
            elif lname == b"transfer-encoding":
                continue  # framing is ours
            elif lname == b"connection" and b"close" in value.lower():
                self.keep_alive = False
                continue
            parts += (name, b": ", value, b"\r\n")
        if length >= 0:
            parts += (b"content-length: %d\r\n" % length,)
            self.remaining = length
        elif not self.head_only and status not in (204, 304) and status >= 200:
            if self.scope["http_version"] != "1.0":
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            # else HTTP/1.0 knows no chunked framing: the body ends with the connection
            # (keep_alive is always off for 1.0), as RFC 9112 §6.3 has it
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        self.head = b"".join(parts)
