"""``h1``: the server's own HTTP/1.1 protocol, llhttp through ``httptools``, serving ASGI.

Why our own: on the gateway's hot routes uvicorn's protocol was a measurable share of the
per-request CPU (a scope with a copied lifespan state, ``parse_url``, a regex per response
header, an ``asyncio.Event`` per request, the head and the body written separately, a
keep-alive timer armed and cancelled per request), and it has no header timeout. This
protocol keeps what the ASGI contract needs and nothing else:

- one write per non-streaming answer (head and body together), chunked framing for bodies
  without a length (streams), the head coalesced with the first chunk;
- keep-alive, pipelining (later requests wait; what comes after them is read but held
  unparsed, :class:`.h1_standins.Held`, so a client that hangs up meanwhile is seen),
  ``Expect: 100-continue``, ``HEAD``, HTTP/1.0, write back-pressure (``pause_writing`` →
  ``send`` waits);
- ``receive()`` yields the body, then blocks until the response is complete or the client
  hangs up, and then says ``http.disconnect`` (what a stream's disconnect watcher needs);
  a route can instead hand a callback to the ``cloverleaf.hangup`` scope extension, run when
  the client hangs up mid-request (no watcher task per request; :mod:`.state`);
- the connection rules of :mod:`.connections` (header timeout, idle timeout, write timeout,
  cap with eviction and a clean 503); a connection is idle only once its last answer has
  left the buffer (a large answer to a slow reader is not cut off by the idle timeout);
- a client that half-closes after its requests (``shutdown(SHUT_WR)``), before or during an
  answer, gets its answers, then the close; one that is gone is told apart by the reset it
  answers a harmless write with (:mod:`.h1_peer`); an answer given before the request's body
  was all read (413, 408) is followed by a close that lets the client read it (see ``_end``);
- a bounded request head: over ``MAX_HEAD`` bytes is a 431, a request-target over ``MAX_URL``
  a 414 (httptools joins the pieces of a header value that arrives over many segments with
  ``+=``: unbounded, one endless header made every segment copy all the previous ones, and
  stalled every client of the process for seconds);
- no protocol upgrades (no h2c, no WebSockets): an ``Upgrade`` header is ignored, the request
  is served as a plain one with its body read per Content-Length, and nothing after it on the
  connection is parsed as a request (httptools would go on parsing the body as the next
  request: request smuggling); CONNECT and a chunked body with ``Upgrade`` are a 400;
- an HTTP/1.1 request without exactly one Host is a 400, a transfer coding other than
  ``chunked`` a 501 (:mod:`.h1_refusals`);
- a malformed request ends the connection only after the requests before it are answered
  (then a 400, as for every protocol error: JSON in OpenAI's shape, with ``date``,
  ``connection: close``).

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
from .h1_peer import CAN_SEE_RESETS, PAUSED_PROBES, TCP_CLOSE, TCP_CLOSE_WAIT, probe_for, tcp_state
from .h1_refusals import (
    CODING,
    MAX_HEAD,
    MAX_URL,
    Refused,
    check_framing,
    error_answer,
    head_too_large,
    not_a_path_answer,
    split_target,
    url_too_long,
)
from .h1_standins import DISCARD, HEAD_BEGAN, NO_HEAD, Discard, Held, RawBody

__all__ = ["HANGUP_EXTENSION", "LIMITS", "Cycle", "H1Protocol", "configure", "error_answer", "status_line"]

log = logging.getLogger("cloverleaf.server")

#: what ``configure`` set for this process (read by every connection's guard)
LIMITS = ConnectionLimits()
HIGH_WATER = 65536
#: refused (503) connections kept open a moment so their answer is read, at most this many at once
MAX_LINGERING = 256
_REFUSAL_BODY = (b'{"error":{"message":"the server is at its connection limit; retry shortly",'
                 b'"type":"overloaded","code":"too_many_connections"}}')
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
           b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY))


def configure(limits: ConnectionLimits) -> None:
    """Set this process's connection rules (before the server starts)."""
    global LIMITS
    LIMITS = limits


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
        self.parser: httptools.HttpRequestParser | RawBody | Discard | Held = self.llhttp  # what data is fed to
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
        self._framing = 0  # of the head in progress: Host lines (exactly one: RFC 9112 §3.2), + CODING
        self.unsent = 0  # bytes of a finished answer still buffered, when last looked (see _send_rest)
        self.half_closed = False  # the client shut its sending side (see eof_received)
        self.checking = False  # _check_gone is scheduled
        self.probed: Cycle | None = None  # the request a probe was written for (see _check_gone)
        #: while reading is paused: (the request, how many 100 Continues it was sent, when the next may go)
        self.paused_probes: tuple[Cycle | None, int, float] = (None, 0, 0.0)

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
        self.cycle = self.probed = None
        self.paused_probes = (None, 0, 0.0)

    def expire(self) -> bool:
        """The guard's verdict: idle too long, head too slow, a client that reads nothing
        (write timeout), or evicted for a newcomer. With output still buffered the transport
        is aborted: a graceful close would wait for the client to read the buffer, forever.
        False (the connection stays): the rest of a finished answer is still going out and
        the client read some of it since the deadline was set, so the write timeout starts
        again (a large answer to a slow client takes as long as it takes)."""
        unsent = self.unsent
        if unsent:
            left = self.transport.get_write_buffer_size()
            if 0 < left < unsent:
                self.unsent = left
                self.deadline = self.loop.time() + self.guard.limits.write_timeout
                return False
        self.deadline = None
        if self.write_paused or unsent:
            self.transport.abort()
        else:
            self.transport.close()
        return True

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
        if self.unsent:
            self._sent()
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
                self._fail(None, head_too_large().answer)
        elif head != NO_HEAD:
            self.head = 0

    def eof_received(self) -> bool | None:
        """The client sent FIN: a half-close (``shutdown(SHUT_WR)``: ``nc -N``, ``socat``,
        health checks; it sends no more requests but still reads) or a hang-up, which look
        the same. Taken for a hang-up, a half-closing client never got its answer, or lost the
        rest of a stream it was reading. So the requests it sent (what was held behind a
        waiting one included) are answered, the last one with ``connection: close``, then the
        connection is closed, and :meth:`_check_gone` finds out whether the client is still
        there (a request whose body was cut short is a 400). None lets asyncio close the
        transport (after what is still buffered has been written)."""
        if self.refusing or self._fin_is_hang_up():
            return None
        if self.half_closed:  # read again after a pause: said once already
            return True
        self.half_closed = True
        if type(self.parser) is Held:  # all the client will send: parsed now
            self._unhold()
        last = self.pipeline[-1] if self.pipeline else self.cycle
        if last is None or last.complete:  # idle, a head cut short, or lingering after a 413/408
            return None
        cycle = self.cycle
        assert cycle is not None  # ``last`` is it, or queued behind it
        if self.parser is not DISCARD:  # else a malformed request's 400 is already arranged (see _fail)
            self.parser = DISCARD
            self.head = NO_HEAD
            if last.more_body:
                self._fail(last, error_answer(400, "the client shut its side of the connection before the request "
                                                   "body was complete; send the whole body", "incomplete_request"))
                if last is cycle:
                    return True
            else:
                last.keep_alive = False
        self._watch()
        return True

    def _fin_is_hang_up(self) -> bool:
        """Where a reset cannot be seen (no ``TCP_INFO``: macOS, Windows), a FIN is a hang-up, as it
        always was: a half-closing client is rare, and a hang-up must stop the work it started."""
        return not CAN_SEE_RESETS

    def pause_queued(self) -> None:
        """Stop reading while requests wait behind the one in progress (more than ``Held``
        keeps, or a waiting request's body past ``HIGH_WATER``): a FIN is not read then, so
        :meth:`_check_gone` looks at the socket's state instead."""
        self.pause_reading()
        self._watch()

    def _watch(self) -> None:
        if not self.checking:
            self._check_gone()

    def _check_gone(self) -> None:
        """Whether the client is gone, checked every 0.1 s while requests are in progress or
        queued and either the client has sent its FIN or reading is paused behind a queued one
        (see :meth:`pause_queued`). A client that closed its socket resets the connection when
        anything reaches it, which leaves the socket in TCP state CLOSE (seen at once on
        loopback, after a round trip elsewhere): then the connection is aborted, the request in
        progress hears a hang-up and the queued ones never start. So something harmless is
        written to ask (:func:`.h1_peer.probe_for`), which a half-closed client reads and skips:
        once the FIN is in (CLOSE_WAIT), once per request, a 100 Continue before its answer or a
        leading zero of the next chunk's size in a chunked one; while reading is paused (a FIN
        may wait unread, unseen, behind what the client still sends) a 100 Continue, at most
        ``PAUSED_PROBES`` per request at doubling intervals (0.1, 0.3, 0.7 s... after the pause:
        some clients refuse more than five interim answers, Go's before 1.24 among them), until
        the answer begins. Where nothing may be written (HTTP/1.0, a Content-Length answer half
        sent) the answer's own next write draws the reset."""
        self.checking = False
        transport = self.transport
        cycle = self.cycle
        if transport is None or transport.is_closing() or ((cycle is None or cycle.complete) and not self.pipeline):
            return
        state = tcp_state(transport)
        if state == TCP_CLOSE:
            transport.abort()
            return
        if state is None or (self.reading and state != TCP_CLOSE_WAIT):
            return  # no TCP_INFO; or no FIN yet, and eof_received will read it
        probe = b""
        if cycle is not None and not cycle.complete:
            version = cycle.scope["http_version"]
            if state != TCP_CLOSE_WAIT:  # reading paused: a FIN may wait behind the bytes not read
                probe = self._paused_probe(cycle, version)
            elif self.probed is not cycle:
                self.probed = cycle
                probe = probe_for(cycle.started, bool(cycle.head), cycle.chunked, version)
        if probe:
            transport.write(probe)
            if tcp_state(transport) == TCP_CLOSE:
                transport.abort()
                return
        self.checking = True
        self.loop.call_later(0.1, self._check_gone)

    def _paused_probe(self, cycle: Cycle, version: str) -> bytes:
        """The 100 Continue to write now while reading is paused, if one is due (see
        :meth:`_check_gone`): at most ``PAUSED_PROBES`` for ``cycle``, each twice as long after
        the one before."""
        owner, sent, due = self.paused_probes
        if owner is not cycle:
            sent, due = 0, 0.0
        now = self.loop.time()
        if sent >= PAUSED_PROBES or now < due:
            return b""
        self.paused_probes = (cycle, sent + 1, now + 0.1 * 2 ** (sent + 1))
        return probe_for(cycle.started, bool(cycle.head), False, version)

    def _parse_error(self, exc: httptools.HttpParserError) -> None:
        """A request llhttp cannot parse (a malformed or duplicated Content-Length, a bad chunk
        size...), or a head refused in a callback (431, 414): a JSON error saying what the
        parser objected to, for the request the bad bytes belong to."""
        refused = exc.__context__
        if isinstance(refused, Refused):
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
        answer = self._dated(answer)
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

    def _dated(self, answer: bytes) -> bytes:
        """``answer`` (from :func:`error_answer`) with the server's default headers after its
        status line, as every other answer has them: ``date`` (RFC 9110 §6.6.1: a 4xx MUST
        carry one), kept current by uvicorn."""
        line, _, rest = answer.partition(b"\r\n")
        return b"".join([line, b"\r\n", *(b"%s: %s\r\n" % pair for pair in self.server_state.default_headers), rest])

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
        if cycle.scope["method"] == "CONNECT":
            self._fail(cycle, not_a_path_answer())
            return
        if chunked:
            self._fail(cycle, error_answer(400, "malformed HTTP request (a chunked body with an Upgrade header); "
                                                "the connection is closed", "bad_http_request"))
            return
        cycle.more_body = length > 0  # llhttp said the message was complete: it skipped the body
        self.parser = RawBody(self, length)
        if rest:
            self.parser.feed_data(rest)

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._expect = False
        self._forwarded = False
        self._framing = 0
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
            raise url_too_long()

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name[0] == 120:  # 'x': most of an SDK's headers (x-stainless-...), one test for them all
            if name.startswith(b"x-forwarded-"):
                self._forwarded = True
        elif name == b"host":
            self._framing += 1
        elif name == b"expect":
            if value.lower() == b"100-continue":
                self._expect = True
        elif name == b"transfer-encoding" and value.strip().lower() != b"chunked":
            self._framing += CODING
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.deadline = None
        parser = self.llhttp
        url = self._url
        head, self.head = self.head, NO_HEAD
        if head != HEAD_BEGAN or len(url) > MAX_URL:  # the head spanned segments, or came in a big one
            url = self._check_head(url)
        version = parser.get_http_version()
        if self._framing != 1:  # not exactly one Host, or a transfer coding we cannot decode
            check_framing(self._framing, version)
        raw_path, _, query = url.partition(b"?")
        if not raw_path.startswith(b"/"):  # absolute-form or '*': let llhttp's URL parser split it
            raw_path, query = split_target(url, parser.get_method())
        raw_path, _, _ = raw_path.partition(b"#")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
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
        else:  # pipelined: waits for the one in progress; what follows it is held, not parsed
            self.pipeline.append(cycle)
            if self.parser is parser:
                self.parser = Held(self)

    def _check_head(self, url: bytes) -> bytes:
        """A head that spanned segments or came in a big one, or a long request-target: the
        request-target whole (it came in pieces if the head spanned segments), then the exact
        size of the head (the per-segment count cannot see the part of the segment it began in)."""
        more, self._url_more = self._url_more, None
        if more is not None:
            url = bytes(more)
        if len(url) > MAX_URL:
            raise url_too_long()
        size = len(url) + 16 + sum(len(name) + len(value) + 4 for name, value in self._headers)
        if size > MAX_HEAD:
            raise head_too_large()
        return url

    def on_body(self, body: bytes) -> None:
        cycle = self.pipeline[-1] if self.pipeline else self.cycle
        if cycle is None or cycle.complete:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER:
            if self.pipeline:  # a queued request's body: it waits, and the connection is watched
                self.pause_queued()
            else:
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
            self._end(cycle)
            return
        if self.transport.is_closing():
            return
        if self.pipeline:
            self._start(self.pipeline.popleft())
            if self.farewell is None and not self.pipeline:  # the last one parsed: parse on
                self.resume_reading()
                self._unhold()
            return
        if self.farewell is not None:  # a bad request came after this one (see _fail)
            self.transport.write(self.farewell)
            self.transport.close()
            return
        if self.transport.get_write_buffer_size():
            self._send_rest()  # idle (the keep-alive timeout) only once it is all sent
        else:
            self.idle_since = now = self.loop.time()
            self.deadline = now + self.guard.limits.keepalive_timeout
        self.resume_reading()

    def _unhold(self) -> None:
        """Back to llhttp, which parses what was held behind the requests that waited (see
        :class:`.h1_standins.Held`)."""
        held = self.parser
        if type(held) is not Held:
            return
        self.parser = self.llhttp
        if held.head >= 0:
            self.head = held.head
        if held.data:
            self.data_received(bytes(held.data))

    def _send_rest(self) -> None:
        """The answer is complete but part of it is still in the transport's buffer (a
        client reading more slowly than we write: a 13 MB embeddings answer at 1 MB/s). Until
        that is sent the connection is not idle: the keep-alive timeout expired mid-download
        and cut the answer off, and eviction took such connections for idle ones. Meanwhile
        the write timeout applies (reset by progress, see ``expire``), and writes count as
        paused (no eviction; a pipelined answer waits its turn) until the buffer is empty,
        when ``resume_writing`` calls :meth:`_sent`."""
        transport = self.transport
        self.unsent = transport.get_write_buffer_size()
        self.deadline = self.loop.time() + self.guard.limits.write_timeout
        transport.set_write_buffer_limits(high=0, low=0)  # pause_writing now, resume_writing once empty

    def _sent(self) -> None:
        """What :meth:`_send_rest` waited for: the buffer is empty. Back to the usual limits,
        and idle from now on if no request is in progress (nor a head being read)."""
        self.unsent = 0
        transport = self.transport
        if transport.is_closing():
            return
        transport.set_write_buffer_limits()
        cycle = self.cycle
        if (cycle is None or cycle.complete) and not self.pipeline and self.head == NO_HEAD:
            self.idle_since = now = self.loop.time()
            self.deadline = now + self.guard.limits.keepalive_timeout

    def _end(self, cycle: Cycle) -> None:
        """Close after this answer (``connection: close``, HTTP/1.0, an error). The rest of
        the answer still buffered is sent first, under the write timeout. If the request's
        body has not all arrived (a 413 or 408 answered before it was read), closing now,
        with the client's bytes unread, makes the kernel answer them with a reset, which can
        destroy the answer before the client reads it (and a client still sending its body
        sees a broken pipe, not the 413): the write side is shut after the answer, what still
        comes in is dropped, and the socket closed when the client closes its side (see
        ``eof_received``) or after the keep-alive timeout."""
        transport = self.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size():
            self._send_rest()
        if not cycle.more_body or self.half_closed:
            transport.close()
            return
        self.parser = DISCARD
        self.head = NO_HEAD
        try:
            transport.write_eof()
        except (OSError, NotImplementedError, RuntimeError):
            transport.close()
            return
        if not self.unsent:
            self.idle_since = now = self.loop.time()
            self.deadline = now + self.guard.limits.keepalive_timeout
        self.resume_reading()
