"""One HTTP/1.1 exchange on one kept-alive connection: the head we write, the response we read.

The half of the lean client (:mod:`cloverleaf.transport.h1.pool`) that speaks the protocol:
:class:`Origin` prepares once per URL what every request to it repeats (pool key, request
target, Host header, Basic auth from the URL), :func:`request_head` writes a request head
from it, and :class:`Connection` is the asyncio protocol that parses the response with
llhttp (through ``httptools``) and hands it to the one exchange in progress: head, body
pieces, end, or an error already worded for cloverleaf's error tree. Pools, retries and the
transport contract are the other half, in :mod:`cloverleaf.transport.h1.pool`.
"""

from __future__ import annotations

import asyncio
import base64
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from ... import __version__
from ..._errors import TimeoutError, TransportError
from ..core import _where

if TYPE_CHECKING:
    from .pool import Pool

#: Unread stream bytes above this pause reading from the socket until the consumer catches up.
HIGH_WATER = 256 * 1024
#: Response heads larger than this are refused (a hostile or broken upstream).
MAX_HEAD_BYTES = 64 * 1024
#: Everything printable in ASCII stays as the adapter wrote it (escapes included); only
#: characters outside ASCII are percent-encoded.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_USER_AGENT = f"cloverleaf/{__version__}"
#: Headers the client writes itself, whatever the request says.
_OURS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_DECODED = ("gzip", "x-gzip", "deflate")


class Inflate:
    """A ``deflate`` body: zlib-wrapped as RFC 9110 says, or raw deflate as some servers send it
    (httpx and aiohttp accept both). The first byte decides: a zlib (or gzip) header, or not."""

    __slots__ = ("obj",)

    def __init__(self) -> None:
        self.obj: Any = None

    def decompress(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self.obj is None:
            wrapped = data[0] & 0x0F == 8 or data[0] == 0x1F  # zlib's CM=8 nibble, or gzip's magic
            self.obj = zlib.decompressobj(zlib.MAX_WBITS | 32 if wrapped else -zlib.MAX_WBITS)
        return self.obj.decompress(data)  # type: ignore[no-any-return]

    def flush(self) -> bytes:
        return self.obj.flush() if self.obj is not None else b""  # type: ignore[no-any-return]


class Stale(Exception):
    """A reused connection was closed by the server before any byte of the response came."""


class Stray(Exception):
    """A second response began on a connection whose response is complete."""


class Origin:
    """Where one URL goes, prepared once: the pool key and the request line's pieces."""

    __slots__ = ("key", "host", "port", "tls", "target", "host_header", "where", "basic_auth")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            err = TransportError(f"unsupported URL {_where(url)!r}: base_url must start with http:// or https://",
                                 url=_where(url))
            err.retryable = False
            raise err
        self.tls = scheme == "https"
        self.host = parts.hostname
        try:
            port = parts.port
        except ValueError:
            port = -1
        if port is not None and not 0 < port < 65536:
            err = TransportError(f"invalid port in URL {_where(url)!r}", url=_where(url))
            err.retryable = False
            raise err
        self.port = port or (443 if self.tls else 80)
        self.key = (self.tls, self.host, self.port)
        path = parts.path or "/"
        target = path + ("?" + parts.query if parts.query else "")
        if not target.isascii():  # percent-encode what HTTP cannot carry raw, as httpx does
            target = quote(target, safe=_URL_SAFE)
        self.target = target  # ASCII now
        default_port = (self.tls and self.port == 443) or (not self.tls and self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.where = _where(url)
        #: ``user:password@`` in the URL becomes Basic auth, as httpx and aiohttp make it
        self.basic_auth: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.basic_auth = "Basic " + base64.b64encode(pair).decode("ascii")


def request_head(method: str, origin: Origin, headers: dict[str, str], body: bytes | None) -> bytes:
    """The request head. A header that would split the head (CR or LF in it) is refused:
    a key pasted with a trailing newline must fail loudly, not inject a header."""
    lines = [f"{method} {origin.target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
    user_agent = authorization = False
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            err = TransportError(f"header {name.strip()!r} contains a line break or colon; check the "
                                 "configured key or header value", url=origin.where)
            err.retryable = False
            raise err
        lname = name.lower()
        if lname in _OURS:
            continue
        user_agent = user_agent or lname == "user-agent"
        authorization = authorization or lname == "authorization"
        lines.append(f"{name}: {value}\r\n")
    if not user_agent:
        lines.append(f"user-agent: {_USER_AGENT}\r\n")
    if origin.basic_auth is not None and not authorization:
        lines.append(f"authorization: {origin.basic_auth}\r\n")
    lines.append(f"content-length: {len(body) if body else 0}\r\n\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        err = TransportError("a header value holds characters HTTP/1.1 headers cannot carry (not Latin-1); "
                             "check the configured key or header value", url=origin.where)
        err.retryable = False
        raise err from None


class Connection(asyncio.Protocol):
    """One kept-alive connection, serving one exchange at a time. Everything the response
    parser reports lands on the current exchange; the consumer waits on ``waiter``."""

    def __init__(self, pool: Pool) -> None:
        import httptools

        self._httptools = httptools
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.in_pool = False
        self.idle_since = 0.0
        self.last_io = 0.0
        self.paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._timeout = 0.0
        self.parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        """Ready for the next exchange. The parser is kept: llhttp starts on the next message
        by itself after a complete one, and a connection that failed is never reused."""
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.error: BaseException | None = None
        self.got_bytes = False
        self.head_bytes = 0
        self.parsed_head_bytes = 0
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.until_eof = False
        self.decoder: Any = None

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.in_pool:
            # Bytes on an idle connection answer nothing we asked (often a 408 before a close);
            # parsed, they would be taken for the next request's response. The connection goes.
            self.close()
            return
        self.got_bytes = True
        self.last_io = self.loop.time()
        if not self.headers_done:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except self._httptools.HttpParserUpgrade:
            self._fail(TransportError(f"{self.pool.origin.where} asked to switch protocols; "
                                      "only HTTP/1.1 is spoken here", url=self.pool.origin.where))
        except self._httptools.HttpParserError as exc:
            if self.complete:
                # Bytes after the response (a second response, or more than Content-Length):
                # the response stands (it may be waited on already), the connection does not.
                self.close()
                return
            self._fail(TransportError(f"invalid HTTP response from {self.pool.origin.where}: {exc}",
                                      url=self.pool.origin.where))
        if not self.headers_done and self.head_bytes > MAX_HEAD_BYTES and self.error is None:
            self._head_too_large()

    def _head_too_large(self) -> None:
        self._fail(TransportError(f"response head from {self.pool.origin.where} exceeds "
                                  f"{MAX_HEAD_BYTES} bytes", url=self.pool.origin.where))

    def eof_received(self) -> bool:
        return False  # close our side too: HTTP/1.1 has no half-closed use here

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        if self.in_pool:
            self.pool.forget(self)  # the server closed an idle connection
            return
        if self.complete or self.error is not None:
            return
        if self.headers_done and self.until_eof:
            self.on_message_complete()  # a close-delimited body ends here
            return
        where = self.pool.origin.where
        if not self.got_bytes and self.reused:
            self._fail(Stale())
        elif self.headers_done:
            self._fail(TransportError(f"connection dropped mid-stream by {where}: the body was cut short",
                                      url=where))
        elif self.waiter is not None or self.head_bytes or self._timer is not None:
            name = type(exc).__name__ if exc else "closed before a response"
            self._fail(TransportError(f"connection dropped by {where}: {name}", url=where))

    def pause_writing(self) -> None:  # request bodies are written whole; the kernel drains them
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks --------------------------------------------------------------
    # The size check in data_received only sees heads that span reads; a head that arrives
    # whole in one read (reads are up to 256 KiB) is measured here, as the parser reports it.
    def on_message_begin(self) -> None:
        if self.complete:  # parsed further, it would overwrite this response's status and headers
            raise Stray()  # stops the parser: data_received closes the connection

    def on_status(self, status: bytes) -> None:
        self._count_head(len(status) + 16)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def _count_head(self, size: int) -> None:
        self.parsed_head_bytes += size
        if self.parsed_head_bytes > MAX_HEAD_BYTES and self.error is None:
            self._head_too_large()

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.headers = []  # an interim response: the real one follows
            return
        self.status = status
        self.headers_done = True
        names = {name for name, _ in self.headers}
        self.until_eof = "content-length" not in names and "transfer-encoding" not in names
        for name, value in self.headers:
            if name == "content-encoding" and value.strip().lower() in _DECODED:
                if value.strip().lower() == "deflate":
                    self.decoder = Inflate()
                else:
                    self.decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.decoder is not None and body:
            try:
                body = self.decoder.decompress(body)
            except zlib.error as exc:
                self._fail(TransportError(f"undecodable compressed body from {self.pool.origin.where}: {exc}",
                                          url=self.pool.origin.where))
                return
            if not body:
                return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:
            return  # the end of an interim (1xx) response
        if self.decoder is not None:
            rest = self.decoder.flush()
            if rest:
                self.chunks.append(rest)
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the call returns
        self._cancel_timer()
        self._wake()

    # -- the exchange -----------------------------------------------------------------------
    def send(self, head: bytes, body: bytes | None, timeout: float) -> None:
        if self.closed or self.transport is None:
            raise Stale()  # closed by the server between the pool and here
        self.last_io = self.loop.time()
        self._timeout = timeout
        self._timer = self.loop.call_at(self.last_io + timeout, self._check_timeout)
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)

    async def wait(self) -> None:
        """Until something new happened (headers, body bytes, the end, an error)."""
        if self.error is not None:
            raise self.error
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        """Everything buffered, resuming the socket if it was paused for the consumer."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.last_io = self.loop.time()
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self._cancel_timer()
        self.close()
        self._wake()

    def _check_timeout(self) -> None:
        self._timer = None
        if self.complete or self.error is not None:
            return
        now = self.loop.time()
        if self.paused:  # waiting on our consumer, not the server: the clock restarts on resume
            self._timer = self.loop.call_at(now + self._timeout, self._check_timeout)
            return
        due = self.last_io + self._timeout
        if due > now:  # bytes came since: wait for the rest
            self._timer = self.loop.call_at(max(due, now + 0.01), self._check_timeout)
            return
        where = self.pool.origin.where
        what = "waiting for the next chunk of the stream from" if self.headers_done else "waiting for a response from"
        self._fail(TimeoutError(f"timed out {what} {where}; raise timeout= if the model is slow", url=where))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
