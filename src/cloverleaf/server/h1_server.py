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
- the connection rules of :mod:`.connections` (header timeout, idle timeout, write timeout,
  cap with eviction and a clean 503);
- a bounded request head: over ``MAX_HEAD`` bytes is a 431, a request-target over ``MAX_URL``
  a 414 (httptools joins the pieces of a header value that arrives over many segments with
  ``+=``: unbounded, one endless header made every segment copy all the previous ones, and
  stalled every client of the process for seconds);
- no protocol upgrades (no h2c, no WebSockets): an ``Upgrade`` header is ignored, the request
  is served as a plain one with its body read per Content-Length, and nothing after it on the
  connection is parsed as a request (httptools would go on parsing the body as the next
  request: request smuggling); CONNECT and a chunked body with ``Upgrade`` are a 400;
- a malformed request ends the connection only after the requests before it are answered
  (then a 400, as for every protocol error: JSON in OpenAI's shape, ``connection: close``).

It plugs into ``uvicorn.Server`` as its ``http`` protocol class, so start-up, the lifespan,
signals, graceful shutdown (``shutdown()`` per connection, tasks awaited) and
``--workers`` stay uvicorn's. Choose it with ``[server] http = "h1"`` (what ``auto`` picks).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any
from urllib.parse import unquote

import httptools
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .connections import ConnectionGuard, ConnectionLimits
from .h1_cycle import HANGUP_EXTENSION, Cycle, status_line

__all__ = ["HANGUP_EXTENSION", "LIMITS", "Cycle", "H1Protocol", "configure", "error_answer", "status_line"]

log = logging.getLogger("cloverleaf.server")

#: what ``configure`` set for this process (read by every connection's guard)
LIMITS = ConnectionLimits()
HIGH_WATER = 65536
#: refused (503) connections kept open a moment so their answer is read, at most this many at once
MAX_LINGERING = 256
#: a request head (request line and headers) may not be larger (431), nor its request-target (414)
MAX_HEAD = 64 * 1024
MAX_URL = 8 * 1024
# ``H1Protocol.head``: bytes of the head in progress that came in segments after the one it began
# in (>= 0), or one of these
NO_HEAD = -1  # no head in progress
HEAD_BEGAN = -2  # a head began in the segment being parsed
_REFUSAL_BODY = (b'{"error":{"message":"the server is at its connection limit; retry shortly",'
                 b'"type":"overloaded","code":"too_many_connections"}}')
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
           b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY))


def configure(limits: ConnectionLimits) -> None:
    """Set this process's connection rules (before the server starts)."""
    global LIMITS
    LIMITS = limits


def error_answer(status: int, message: str, code: str, extra: bytes = b"") -> bytes:
    """A whole answer to a request the app never saw (a protocol error): JSON in OpenAI's
    shape, as every other error (the API is not known yet), then the connection is closed."""
    text = "".join(c for c in message if " " <= c <= "~").replace("\\", "/").replace('"', "'")
    body = (b'{"error": {"message": "%s", "type": "invalid_request_error", "param": null, "code": "%s"}}'
            % (text.encode("ascii"), code.encode("ascii")))
    return (b"%scontent-type: application/json\r\ncontent-length: %d\r\nx-cloverleaf-overhead-ms: 0.000\r\n"
            b"%sconnection: close\r\n\r\n%s" % (status_line(status), len(body), extra, body))


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a head the server will not take."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer


def _url_too_long() -> _Refused:
    return _Refused(error_answer(414, f"the request-target (URL) is longer than {MAX_URL} bytes; the connection "
                                      "is closed", "url_too_long"))


def _head_too_large() -> _Refused:
    return _Refused(error_answer(431, f"the request head (request line and headers) is larger than {MAX_HEAD} "
                                      "bytes; the connection is closed", "headers_too_large"))


class _RawBody:
    """The parser after a request with an ``Upgrade`` header (which llhttp hands over right
    after the head, skipping the body): the body, ``left`` bytes per its Content-Length, goes
    to the request; whatever follows is dropped, never parsed as another request."""

    __slots__ = ("conn", "left")

    def __init__(self, conn: H1Protocol, left: int) -> None:
        self.conn = conn
        self.left = left

    def feed_data(self, data: bytes) -> None:
        left = self.left
        if left <= 0:
            return
        part = data[:left]
        self.left = left = left - len(part)
        self.conn.on_body(part)
        if left == 0:
            self.conn.on_message_complete()


class _Discard:
    """The parser once parsing has stopped (a malformed request): bytes are dropped."""

    __slots__ = ()

    def feed_data(self, data: bytes) -> None:
        pass


DISCARD = _Discard()


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
        self.llhttp = httptools.HttpRequestParser(self)
        self.parser: httptools.HttpRequestParser | _RawBody | _Discard = self.llhttp  # what data is fed to
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
        self.closing = False  # graceful shutdown has begun
        self.farewell: bytes | None = None  # the answer to a bad request, once those before it are answered
        self.head = NO_HEAD
        self.began = HEAD_BEGAN  # what on_message_begin sets ``head`` to
        self._url = b""
        self._url_more: bytearray | None = None  # a request-target that came in pieces
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
        if cycle is not None:
            if not cycle.complete:
                cycle.hang_up()
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
        self.parser = self.llhttp = None  # type: ignore[assignment]
        self.cycle = None

    def expire(self) -> None:
        """The guard's verdict: idle too long, head too slow, a client that reads nothing
        (write timeout), or evicted for a newcomer. With writes paused the transport is
        aborted: a graceful close would wait for the client to read the buffer, forever."""
        self.deadline = None
        if self.write_paused:
            self.transport.abort()
        else:
            self.transport.close()

    def shutdown(self) -> None:
        """Graceful shutdown: close if idle, else after the current response."""
        self.closing = True
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
            self.deadline = None  # a request is in progress: no deadline
        self.drained = None

    async def drain(self) -> None:
        """Wait until the client has read enough of what was written. It must within the
        write timeout (the guard's sweep then aborts the connection, which the request sees
        as a hang-up): a client that never reads would otherwise hold the connection, and a
        stream's upstream call, for ever, out of reach of the sweep and of eviction."""
        if self.drained is None:
            self.drained = self.loop.create_future()
        self.deadline = self.loop.time() + self.guard.limits.write_timeout
        try:
            await self.drained
        finally:
            if self.cycle is not None and not self.cycle.complete:
                self.deadline = None

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
        big = len(data) > MAX_HEAD
        if big:  # a head that begins in it may be larger than MAX_HEAD without spanning segments
            self.began = HEAD_BEGAN - 1
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade(data[exc.args[0]:])
            return
        except httptools.HttpParserError as exc:
            self._parse_error(exc)
            return
        finally:
            if big:
                self.began = HEAD_BEGAN
        # the head's size, counted per segment (a few integer operations): a head still
        # incomplete after a segment counts that segment whole from the next one on
        head = self.head
        if head >= 0:
            head += len(data)
            self.head = head
            if head > MAX_HEAD:
                self._fail(None, _head_too_large().answer)
        elif head != NO_HEAD:
            self.head = 0

    def eof_received(self) -> bool | None:
        return None

    def _parse_error(self, exc: httptools.HttpParserError) -> None:
        """A request llhttp cannot parse (a malformed or duplicated Content-Length, a bad chunk
        size...), or a head refused in a callback (431, 414): a JSON error saying what the
        parser objected to, for the request the bad bytes belong to."""
        refused = exc.__context__
        if isinstance(refused, _Refused):
            self._fail(None, refused.answer)
            return
        reason = str(exc)[:120] or "unparseable"
        answer = error_answer(400, f"malformed HTTP request ({reason}); the connection is closed", "bad_http_request")
        parsing = self.pipeline[-1] if self.pipeline else self.cycle
        self._fail(parsing if parsing is not None and parsing.more_body else None, answer)

    def _fail(self, culprit: Cycle | None, answer: bytes) -> None:
        """Stop reading (nothing more on this connection is parsed) and answer ``answer`` for
        ``culprit``, the request the bad bytes belong to (in its body), or None (a request
        whose head was refused). The requests before it are answered first, not cut off: a
        client pipelining a bad request after a good one gets both answers, and a slow
        upstream call of the first is not cancelled as though the client had hung up."""
        self.pause_reading()
        self.parser = DISCARD
        self.head = NO_HEAD
        current = self.cycle
        if culprit is not None and not culprit.complete:
            if culprit is current:  # the request in progress: its app hears a hang-up
                culprit.hang_up()
                if not culprit.started:
                    self.transport.write(answer)
                self.transport.close()
                return
            self.pipeline.pop()  # a queued request (the last one parsed): never run
        if current is None or current.complete:
            self.transport.write(answer)
            self.transport.close()
        else:
            self.farewell = answer  # written by response_done, after the last one queued

    def _upgrade(self, rest: bytes) -> None:
        """llhttp saw ``Connection: upgrade`` with ``Upgrade`` (``curl --http2`` sends
        ``Upgrade: h2c``), or CONNECT, and stopped after the head. We upgrade to nothing: the
        request is served as a plain one, its body (``rest`` and what follows, per its
        Content-Length) read here, and the connection closed after the answer; httptools
        would parse the body as the next request (request smuggling). CONNECT, and a chunked
        body (no length to read by), are a 400."""
        cycle = self.pipeline[-1] if self.pipeline else self.cycle
        assert cycle is not None  # on_headers_complete made it; its task has not run yet
        cycle.keep_alive = False
        length, chunked = 0, False
        for name, value in cycle.scope["headers"]:
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        if cycle.scope["method"] == "CONNECT" or chunked:
            why = "CONNECT is not served" if not chunked else "a chunked body with an Upgrade header"
            self._fail(cycle, error_answer(400, f"malformed HTTP request ({why}); the connection is closed",
                                           "bad_http_request"))
            return
        cycle.more_body = length > 0  # llhttp said the message was complete: it skipped the body
        self.parser = _RawBody(self, length)
        if rest:
            self.parser.feed_data(rest)

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._expect = False
        self._forwarded = False
        self.head = self.began
        if self.deadline is not None:  # the head has header_timeout from its first byte
            self.deadline = self.loop.time() + self.guard.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        if self._url:
            self._more_url(url)
        else:
            self._url = url

    def _more_url(self, url: bytes) -> None:
        """A request-target arriving over several segments: collected in a bytearray (``+=``
        on bytes would copy all of it again for each piece), and refused past ``MAX_URL``."""
        more = self._url_more
        if more is None:
            more = self._url_more = bytearray(self._url)
        more += url
        if len(more) > MAX_URL:
            raise _url_too_long()

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect = True
        elif name.startswith(b"x-forwarded-"):
            self._forwarded = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.deadline = None
        parser = self.llhttp
        url = self._url
        head, self.head = self.head, NO_HEAD
        if head != HEAD_BEGAN or len(url) > MAX_URL:  # the head spanned segments, or came in a big one
            url = self._check_head(url)
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
        cycle = Cycle(self, scope, keep_alive, self._expect and version != "1.0",  # 1.0 knows no 100 Continue
                      self.app if self._forwarded else self.plain_app)
        if self.cycle is None or self.cycle.complete:
            self._start(cycle)
        else:  # pipelined: waits for the one in progress
            self.pipeline.append(cycle)
            self.pause_reading()

    def _check_head(self, url: bytes) -> bytes:
        """A head that spanned segments or came in a big one, or a long request-target: the
        request-target whole (it came in pieces if the head spanned segments), then the exact
        size of the head (the per-segment count cannot see the part of the segment it began in)."""
        more, self._url_more = self._url_more, None
        if more is not None:
            url = bytes(more)
        if len(url) > MAX_URL:
            raise _url_too_long()
        size = len(url) + 16 + sum(len(name) + len(value) + 4 for name, value in self._headers)
        if size > MAX_HEAD:
            raise _head_too_large()
        return url

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
            if self.farewell is None:
                self.resume_reading()
            self._start(self.pipeline.popleft())
            return
        if self.farewell is not None:  # a bad request came after this one (see _fail)
            self.transport.write(self.farewell)
            self.transport.close()
            return
        self.idle_since = now = self.loop.time()
        self.deadline = now + self.guard.limits.keepalive_timeout
        self.resume_reading()
