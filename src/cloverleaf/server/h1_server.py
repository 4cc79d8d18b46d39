"""``h1``: the server's own HTTP/1.1 protocol, llhttp through ``httptools``, serving ASGI.

Why our own: on the gateway's hot routes uvicorn's protocol was a measurable share of the
per-request CPU (a scope with a copied lifespan state, ``parse_url``, a regex per response
header, an ``asyncio.Event`` per request, the head and the body written separately, a
keep-alive timer armed and cancelled per request), and it has no header timeout. This
protocol keeps what the ASGI contract needs and nothing else:

- one write per non-streaming answer (head and body together), chunked framing for bodies
  without a length (streams), the head coalesced with the first chunk;
- keep-alive, pipelining (later requests wait, reading paused), ``Expect: 100-continue``,
  ``HEAD``, HTTP/1.0, write back-pressure (``pause_writing`` → ``send`` waits);
- ``receive()`` yields the body, then blocks until the response is complete or the client
  hangs up, and then says ``http.disconnect`` (what a stream's disconnect watcher needs);
  a route can instead hand a callback to the ``cloverleaf.hangup`` scope extension, run when
  the client hangs up mid-request (no watcher task per request; :mod:`.state`);
- the connection rules of :mod:`.connections` (header timeout, idle timeout, cap with
  eviction and a clean 503).

It plugs into ``uvicorn.Server`` as its ``http`` protocol class, so start-up, the lifespan,
signals, graceful shutdown (``shutdown()`` per connection, tasks awaited) and
``--workers`` stay uvicorn's. Choose it with ``[server] http = "h1"`` (what ``auto`` picks).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httptools
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .connections import ConnectionGuard, ConnectionLimits

log = logging.getLogger("cloverleaf.server")
#: the scope extension that takes a hang-up callback (see :meth:`Cycle.on_hangup`)
HANGUP_EXTENSION = "cloverleaf.hangup"

#: what ``configure`` set for this process (read by every connection's guard)
LIMITS = ConnectionLimits()
HIGH_WATER = 65536
#: refused (503) connections kept open a moment so their answer is read, at most this many at once
MAX_LINGERING = 256
_BAD_NAME = re.compile(b'[\x00-\x20\x7f()<>@,;:\\[\\]={}\\\\"/?]')
_BAD_VALUE = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS: dict[int, bytes] = {}
_REFUSAL_BODY = (b'{"error":{"message":"the server is at its connection limit; retry shortly",'
                 b'"type":"overloaded","code":"too_many_connections"}}')
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
           b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY))


def configure(limits: ConnectionLimits) -> None:
    """Set this process's connection rules (before the server starts)."""
    global LIMITS
    LIMITS = limits


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


def _guard_of(server_state: Any, loop: asyncio.AbstractEventLoop) -> ConnectionGuard:
    guard: ConnectionGuard | None = getattr(server_state, "cloverleaf_guard", None)
    if guard is None:
        guard = ConnectionGuard(LIMITS, loop)
        server_state.cloverleaf_guard = guard
    return guard


class H1Protocol(asyncio.Protocol):
    """One client connection (see the module docstring)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        # uvicorn wraps the app in ProxyHeadersMiddleware, which only acts on requests that
        # carry X-Forwarded-* headers; the others (nearly all) skip the extra layer
        self.plain_app = getattr(self.app, "app", self.app) if isinstance(self.app, ProxyHeadersMiddleware) else self.app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.root_path: str = config.root_path
        self.guard = _guard_of(server_state, self.loop)
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.server: tuple[str, int] | None = None
        self.client: tuple[str, int] | None = None
        self.deadline: float | None = None  # None while a request is in progress
        self.idle_since = 0.0  # when it last had no request in progress (eviction order)
        self.cycle: Cycle | None = None
        self.pipeline: deque[Cycle] = deque()
        self.refusing = False
        self.lingering = False  # a refused connection counted in guard.lingering
        self.reading = True
        self.write_paused = False
        self.drained: asyncio.Future[None] | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._expect = False
        self._forwarded = False

    # -- the connection ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self.guard.admit(self):
            self.refusing = True  # answered 503 at once, then closed (see _refuse)
            self.deadline = None
            transport.write(REFUSAL)  # type: ignore[attr-defined]
            self._refuse()
            return
        self.server_state.connections.add(self)
        self.idle_since = now = self.loop.time()
        self.deadline = now + self.guard.limits.header_timeout
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if isinstance(peer, tuple):
            self.client = (str(peer[0]), int(peer[1]))
        if isinstance(local, tuple):
            self.server = (str(local[0]), int(local[1]))

    def _refuse(self) -> None:
        """Half-close after the 503 so the answer is not lost to a reset (unread input
        makes the kernel send RST on close); the socket is dropped a second later. Refused
        sockets are beyond the cap, so only a bounded number linger: past that, a flood of
        them is closed at once (the 503 may then be lost, the file descriptors are not)."""
        guard = self.guard
        if guard.lingering >= MAX_LINGERING:
            self.transport.abort()
            return
        try:
            self.transport.write_eof()
        except (OSError, NotImplementedError, RuntimeError):
            self.transport.close()
            return
        guard.lingering += 1
        self.lingering = True
        self.loop.call_later(1.0, self.transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refusing:
            if self.lingering:
                self.lingering = False
                self.guard.lingering -= 1
            return
        self.guard.leave(self)
        self.server_state.connections.discard(self)
        cycle = self.cycle
        if cycle is not None and not cycle.complete:
            cycle.disconnected = True
            hangup, cycle.hangup = cycle.hangup, None
            if hangup is not None:
                hangup()
        if cycle is not None:
            cycle.wake()
        for queued in self.pipeline:
            queued.disconnected = True
        self.pipeline.clear()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        # the parser holds this protocol for its callbacks, and the last cycle holds it as its
        # connection: reference cycles the collector would free only in a full collection, since
        # a connection lives long enough to reach the oldest generation (measured: after 640
        # connections, 640 protocols with their transports, cycles and buffers were garbage)
        self.parser = None  # type: ignore[assignment]
        self.cycle = None

    def expire(self) -> None:
        """The guard's verdict: idle too long, head too slow, or evicted for a newcomer."""
        self.deadline = None
        self.transport.close()

    def shutdown(self) -> None:
        """Graceful shutdown: close if idle, else after the current response."""
        if self.cycle is None or self.cycle.complete:
            self.transport.close()
        else:
            self.cycle.keep_alive = False

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    async def drain(self) -> None:
        if self.drained is None:
            self.drained = self.loop.create_future()
        await self.drained

    def pause_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.reading:
            self.reading = True
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.refusing:
            return  # discarded until the client closes or the socket is dropped
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no upgrades here: the request was served as a plain one
        except httptools.HttpParserError as exc:
            self._bad_request(str(exc))

    def eof_received(self) -> bool | None:
        return None

    def _bad_request(self, why: str) -> None:
        """A request llhttp cannot parse (a malformed or duplicated Content-Length, a bad chunk
        size...): a JSON error in OpenAI's shape, as every other error (the API is not known
        yet), saying what the parser objected to; then the connection is closed."""
        reason = "".join(c for c in why[:120] if " " <= c <= "~").replace("\\", "/").replace('"', "'")
        body = (b'{"error": {"message": "malformed HTTP request (%s); the connection is closed", '
                b'"type": "invalid_request_error", "param": null, "code": "bad_http_request"}}'
                % (reason or "unparseable").encode("ascii"))
        if self.cycle is None or self.cycle.complete:
            self.transport.write(b"%scontent-type: application/json\r\ncontent-length: %d\r\n"
                                 b"x-cloverleaf-overhead-ms: 0.000\r\nconnection: close\r\n\r\n%s"
                                 % (status_line(400), len(body), body))
        self.transport.close()

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._expect = False
        self._forwarded = False
        if self.deadline is not None:  # the head has header_timeout from its first byte
            self.deadline = self.loop.time() + self.guard.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect = True
        elif name.startswith(b"x-forwarded-"):
            self._forwarded = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.deadline = None
        parser = self.parser
        url = self._url
        raw_path, _, query = url.partition(b"?")
        if not raw_path.startswith(b"/"):  # absolute-form or '*': let llhttp's URL parser split it
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path or b"/", parsed.query or b""
        raw_path, _, _ = raw_path.partition(b"#")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        version = parser.get_http_version()
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version, "server": self.server, "client": self.client, "scheme": "http",
            "method": parser.get_method().decode("ascii"), "root_path": self.root_path,
            "path": self.root_path + path, "raw_path": raw_path, "query_string": query,
            "headers": self._headers, "state": self.app_state.copy() if self.app_state else {},
        }
        keep_alive = version != "1.0" and parser.should_keep_alive()
        cycle = Cycle(self, scope, keep_alive, self._expect, self.app if self._forwarded else self.plain_app)
        if self.cycle is None or self.cycle.complete:
            self._start(cycle)
        else:  # pipelined: waits for the one in progress
            self.pipeline.append(cycle)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        cycle = self.pipeline[-1] if self.pipeline else self.cycle
        if cycle is None or cycle.complete:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER:
            self.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        cycle = self.pipeline[-1] if self.pipeline else self.cycle
        if cycle is None or cycle.complete:
            return
        cycle.more_body = False
        cycle.wake()

    # -- requests --------------------------------------------------------------------------

    def _start(self, cycle: Cycle) -> None:
        self.cycle = cycle
        cycle.scope["extensions"] = {HANGUP_EXTENSION: cycle.on_hangup}   # taken back when it ends
        task = self.loop.create_task(cycle.run())
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def response_done(self, cycle: Cycle) -> None:
        self.server_state.total_requests += 1
        if not cycle.keep_alive:
            self.transport.close()
            return
        if self.transport.is_closing():
            return
        if self.pipeline:
            self.resume_reading()
            self._start(self.pipeline.popleft())
            return
        self.idle_since = now = self.loop.time()
        self.deadline = now + self.guard.limits.keepalive_timeout
        self.resume_reading()


class Cycle:
    """One request and its response: the ASGI ``receive`` and ``send``."""

    __slots__ = ("conn", "app", "scope", "keep_alive", "expect_continue", "body", "more_body", "disconnected",
                 "started", "complete", "chunked", "remaining", "head", "waiter", "head_only", "body_given",
                 "hangup")

    def __init__(self, conn: H1Protocol, scope: dict[str, Any], keep_alive: bool, expect_continue: bool,
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

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and self.disconnected:
                pass
            else:
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
            if _BAD_NAME.search(name) or _BAD_VALUE.search(value):
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
            self.chunked = True
            parts.append(b"transfer-encoding: chunked\r\n")
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        self.head = b"".join(parts)
