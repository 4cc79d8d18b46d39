"""A lean HTTP/1.1 client for the transport's async path: the server's hot path.

Why our own: a gateway does one thing with its HTTP client, millions of times: a POST on a
kept-alive connection to one of a few upstreams, then a body or a stream. aiohttp's
``ClientSession.request`` spends most of its time on what a gateway never uses (cookie
jars, redirects, tracing hooks, URL re-parsing, header merging): about a quarter of the
gateway's CPU per request under load, measured in ``bench/``. This client writes the request
head from a template prepared once per URL, parses the response with llhttp (through
``httptools``, which uvicorn already needs) and keeps idle connections in a deque per
origin. It is chosen by ``http_client = "auto"`` when ``httptools`` is importable and no
proxy is configured in the environment (proxies go through httpx, which honours them).

The contract is the same as :class:`~cloverleaf.transport.Transport`'s async methods:
retries with backoff and ``Retry-After`` through the same
:class:`~cloverleaf.transport.RetryPolicy`, an error status returned (not raised) with its
body read, failures mapped into the same error tree with the same wording. What HTTP/1.1
asks of a client is here: Content-Length, chunked and close-delimited bodies, 1xx interim
responses skipped, ``Connection: close`` honoured, gzip/deflate bodies decoded, TLS with
certificate checks. A request that meets a kept-alive connection the server has just
closed (the keep-alive race: no byte of a response came back) is sent again at once on a
new connection, at most twice; every other failure goes to the retry policy. That resend is
no new risk for a POST: a connection dropped before any response byte is a retryable error
under every backend's retry policy anyway (a server that took the request and then died
without a byte looks the same), and the resend only skips the backoff for the common case,
a server closing an idle connection as we reuse it. The read timeout is the longest wait for the next bytes, as in httpx and aiohttp.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import os
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from . import __version__
from .errors import ConnectError, TimeoutError, TransportError
from .http import HttpRequest, HttpResponse
from .transport import Retry, RetryPolicy, StreamHandle, _where

#: Idle connections older than this are closed rather than reused (servers commonly drop
#: idle connections after 5-75 s; the keep-alive race is handled either way).
KEEPALIVE_SECONDS = 15.0
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


def available() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


class _Inflate:
    """A ``deflate`` body: zlib-wrapped as RFC 9110 says, or raw deflate as some servers send it
    (httpx and aiohttp accept both). The first byte decides: a zlib (or gzip) header, or not."""

    __slots__ = ("obj",)

    def __init__(self) -> None:
        self.obj: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self.obj is None:
            wrapped = data[0] & 0x0F == 8 or data[0] == 0x1F  # zlib's CM=8 nibble, or gzip's magic
            self.obj = zlib.decompressobj(zlib.MAX_WBITS | 32 if wrapped else -zlib.MAX_WBITS)
        return self.obj.decompress(data)  # type: ignore[no-any-return]

    def flush(self) -> bytes:
        return self.obj.flush() if self.obj is not None else b""  # type: ignore[no-any-return]


class _Stale(Exception):
    """A reused connection was closed by the server before any byte of the response came."""


class _Stray(Exception):
    """A second response began on a connection whose response is complete."""


class _Origin:
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
        self.target = target.encode("ascii")
        default_port = (self.tls and self.port == 443) or (not self.tls and self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.where = _where(url)
        #: ``user:password@`` in the URL becomes Basic auth, as httpx and aiohttp make it
        self.basic_auth: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.basic_auth = "Basic " + base64.b64encode(pair).decode("ascii")


def _head(method: str, origin: _Origin, headers: dict[str, str], body: bytes | None) -> bytes:
    """The request head. A header that would split the head (CR or LF in it) is refused:
    a key pasted with a trailing newline must fail loudly, not inject a header."""
    lines = [f"{method} ", origin.target.decode("latin-1"), f" HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
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


class _Connection(asyncio.Protocol):
    """One kept-alive connection, serving one exchange at a time. Everything the response
    parser reports lands on the current exchange; the consumer waits on ``waiter``."""

    def __init__(self, pool: _Pool) -> None:
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
            self._fail(_Stale())
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
            raise _Stray()  # stops the parser: data_received closes the connection

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
                    self.decoder = _Inflate()
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
            raise _Stale()  # closed by the server between the pool and here
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


class _Pool:
    """Idle connections to one origin, newest last; at most ``limit`` open at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: _Origin, limit: int, connect_timeout: float,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.loop = loop
        self.origin = origin
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.ssl_context = ssl_context
        self.idle: deque[_Connection] = deque()
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        #: Set by :meth:`close` (the transport's aclose): connections in use then are closed
        #: when released, not parked in a pool nobody will close again.
        self.closed = False

    async def acquire(self, hint: str | None) -> _Connection:
        idle = self.idle
        if idle:
            expired = self.loop.time() - KEEPALIVE_SECONDS
            while idle and idle[0].idle_since < expired:
                self._discard(idle.popleft())
            if idle:
                return self._take(idle.pop())
        while self.open >= self.limit:
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._wake_one()  # pass on a wake-up this task can no longer use
                raise
            if idle:
                return self._take(idle.pop())
        self.open += 1
        try:
            return await self._connect(hint)
        except BaseException:
            self.open -= 1
            self._wake_one()
            raise

    async def _connect(self, hint: str | None) -> _Connection:
        origin = self.origin
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self), origin.host, origin.port,
                    ssl=self.ssl_context if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None)
        except builtins.TimeoutError:  # asyncio.timeout's; ours is cloverleaf.errors.TimeoutError
            raise TimeoutError(f"timed out connecting to {origin.where}; is the server reachable?",
                               url=origin.where) from None
        except ssl.SSLError as exc:
            err = ConnectError(f"TLS handshake with {origin.where} failed: {exc.reason or exc}", url=origin.where)
            err.retryable = isinstance(exc, ssl.SSLEOFError)
            raise err from None
        except OSError as exc:
            msg = f"could not connect to {origin.where}: {exc.strerror or exc}"
            if hint:
                msg += f"; {hint}"
            raise ConnectError(msg, url=origin.where) from None
        return conn

    def _take(self, conn: _Connection) -> _Connection:
        conn.in_pool = False
        conn.reused = True
        return conn

    def release(self, conn: _Connection) -> None:
        """Back to the idle deque when the exchange finished cleanly; closed otherwise."""
        if conn.reusable() and not self.closed:
            if conn.paused and conn.transport is not None:
                # a stream left unread after its body ended with reading paused: without this the
                # next exchange on this connection would never see its response
                conn.paused = False
                conn.transport.resume_reading()
            conn._reset()
            conn.in_pool = True
            conn.idle_since = self.loop.time()
            self.idle.append(conn)
        else:
            conn.close()
            self.open -= 1
        self._wake_one()

    def forget(self, conn: _Connection) -> None:
        """An idle connection the server closed: out of the deque, and no longer counted."""
        try:
            self.idle.remove(conn)
        except ValueError:
            return
        conn.in_pool = False
        self.open -= 1

    def _discard(self, conn: _Connection) -> None:
        conn.in_pool = False
        conn.close()
        self.open -= 1

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        while self.idle:
            self._discard(self.idle.pop())


class H1Transport:
    """Sends requests over pooled HTTP/1.1 connections, with the Transport's retry rules.

    ``max_connections`` bounds the open connections to each upstream origin (scheme, host,
    port); aiohttp's bound is one total across origins. Pools belong to an event loop
    (connections cannot move between loops): one set per loop, created on first use and
    closed by :meth:`aclose`."""

    def __init__(self, *, timeout: float = 600.0, connect_timeout: float = 10.0, max_connections: int = 1000,
                 retry: RetryPolicy | None = None, max_retries: int = 2) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._pools: dict[asyncio.AbstractEventLoop, dict[Any, _Pool]] = {}
        self._origins: dict[str, _Origin] = {}
        self._ssl: ssl.SSLContext | None = None

    # -- pools ------------------------------------------------------------------------------
    def _origin(self, url: str) -> _Origin:
        origin = self._origins.get(url)
        if origin is None:
            if len(self._origins) >= 1024:
                self._origins.clear()
            origin = self._origins[url] = _Origin(url)
        return origin

    def _pool(self, origin: _Origin) -> _Pool:
        loop = asyncio.get_running_loop()
        pools = self._pools.get(loop)
        if pools is None:
            pools = self._pools[loop] = {}
        pool = pools.get(origin.key)
        if pool is None:
            pool = pools[origin.key] = _Pool(loop, origin, self.max_connections, self.connect_timeout,
                                              self._ssl_context() if origin.tls else None)
        return pool

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            # the CAs httpx trusts (the sync path uses it): SSL_CERT_FILE or SSL_CERT_DIR when
            # set (a private or corporate CA), else certifi's bundle
            named = next(((var, os.environ[var]) for var in ("SSL_CERT_FILE", "SSL_CERT_DIR") if os.environ.get(var)),
                         None)
            if named is not None:
                var, path = named
                try:
                    context = (ssl.create_default_context(cafile=path) if var == "SSL_CERT_FILE"
                               else ssl.create_default_context(capath=path))
                except (OSError, ssl.SSLError) as exc:
                    err = TransportError(f"could not load the CA certificates {var} names ({path}): {exc}")
                    err.retryable = False
                    raise err from None
            else:
                try:
                    import certifi

                    context = ssl.create_default_context(cafile=certifi.where())
                except ImportError:  # pragma: no cover - httpx brings certifi
                    context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    async def aclose(self) -> None:
        """Close this loop's connections (pools of loops that are gone are dropped)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        pools, self._pools = self._pools, {}
        for owner, by_origin in pools.items():
            if owner is loop:
                for pool in by_origin.values():
                    pool.close()

    # -- one exchange -------------------------------------------------------------------------
    async def _open(self, req: HttpRequest, hint: str | None) -> tuple[_Pool, _Connection]:
        """Send ``req`` and wait for the response head; a stale kept-alive connection is
        replaced at once (at most twice: then the failure is real)."""
        if req.method == "HEAD":  # a HEAD response announces a body it does not send
            err = TransportError("the h1 client does not send HEAD requests; set http_client = \"httpx\"",
                                 url=_where(req.url))
            err.retryable = False  # it would fail the same way every time
            raise err
        origin = self._origin(req.url)
        head = _head(req.method, origin, req.headers, req.body)
        pool = self._pool(origin)
        timeout = req.timeout or self.timeout
        for _ in range(3):
            conn = await pool.acquire(hint)
            try:
                conn.send(head, req.body, timeout)
                while not conn.headers_done:
                    await conn.wait()
            except _Stale:
                pool.release(conn)
                continue
            except BaseException:
                conn.close()
                pool.release(conn)
                raise
            return pool, conn
        raise TransportError(f"connection dropped by {origin.where}: closed before a response", url=origin.where)

    async def _read_all(self, pool: _Pool, conn: _Connection) -> bytes:
        # Taking what is buffered while waiting matters: a body above HIGH_WATER pauses
        # reading until someone takes it, and waiting for the end without taking it never ends.
        parts: list[bytes] = []
        try:
            while not conn.complete:
                if conn.chunks:
                    parts.append(conn.take())
                await conn.wait()
            if conn.chunks:
                parts.append(conn.take())
            return parts[0] if len(parts) == 1 else b"".join(parts)
        finally:
            pool.release(conn)

    # -- one-shot requests ------------------------------------------------------------------
    async def asend(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        retry = Retry(self._policy(max_retries), req.url, hint, map_h1_exception)
        while True:
            try:
                pool, conn = await self._open(req, hint)
                status, headers = conn.status, dict(conn.headers)
                body = await self._read_all(pool, conn)
            except Exception as exc:  # noqa: BLE001 - mapped by Retry
                await asyncio.sleep(retry.after_exception(exc))
                continue
            resp = HttpResponse(status, headers, body, req.url)
            wait = retry.after_response(resp)
            if wait is None:
                return resp
            await asyncio.sleep(wait)

    # -- streams ----------------------------------------------------------------------------
    @asynccontextmanager
    async def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                      hint: str | None = None) -> AsyncIterator[StreamHandle]:
        """Open a streaming response; retries happen only before any byte is handed out.
        An error status comes back with its full body read (``chunks()`` yields it once)."""
        retry = Retry(self._policy(max_retries), req.url, hint, map_h1_exception)
        while True:
            try:
                pool, conn = await self._open(req, hint)
                status, headers = conn.status, dict(conn.headers)
                body = await self._read_all(pool, conn) if status >= 400 else None
            except Exception as exc:  # noqa: BLE001 - mapped by Retry
                await asyncio.sleep(retry.after_exception(exc))
                continue
            if body is not None:
                wait = retry.after_response(HttpResponse(status, headers, body, req.url))
                if wait is not None:
                    await asyncio.sleep(wait)
                    continue
                yield StreamHandle(status, headers, req.url, _once(body))
                return
            try:
                yield StreamHandle(status, headers, req.url, _chunks(conn))
            finally:
                if not conn.complete:
                    conn.close()  # abandoned mid-stream: the connection cannot be reused
                pool.release(conn)
            return

    def _policy(self, max_retries: int | None) -> RetryPolicy:
        if max_retries is None or max_retries == self.retry.max_retries:
            return self.retry
        return RetryPolicy(max_retries, self.retry.base_delay, self.retry.max_delay, self.retry.max_retry_wait)


async def _chunks(conn: _Connection) -> AsyncIterator[bytes]:
    """The body as it arrives: everything buffered since the last step, in one piece."""
    while True:
        if conn.chunks:
            yield conn.take()
        elif conn.complete:
            return
        else:
            await conn.wait()


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def map_h1_exception(exc: BaseException, url: str, hint: str | None = None, *,
                     mid_stream: bool = False) -> TransportError:
    """Errors raised here are already in cloverleaf's tree; anything else from the socket
    layer is worded like the other backends'."""
    if isinstance(exc, TransportError):
        return exc
    where = _where(url)
    if isinstance(exc, OSError):
        what = "connection dropped mid-stream" if mid_stream else "connection dropped"
        return TransportError(f"{what} by {where}: {type(exc).__name__}", url=where)
    raise exc
