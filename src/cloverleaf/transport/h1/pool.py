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
This module holds the pools and the transport contract; the protocol itself (request head,
response parsing, one connection's exchange) is :mod:`cloverleaf.transport.h1.connection`.

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
a server closing an idle connection as we reuse it. The read timeout is the longest wait
for the next bytes, as in httpx and aiohttp.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from ..._errors import ConnectError, TimeoutError, TransportError
from ..._http import HttpRequest, HttpResponse
from ..core import OpenedStream, Retry, RetryPolicy, StreamHandle, _where, send_with_retries, stream_with_retries
from .connection import Connection, Origin, Stale, request_head

#: Idle connections older than this are closed rather than reused (servers commonly drop
#: idle connections after 5-75 s; the keep-alive race is handled either way).
KEEPALIVE_SECONDS = 15.0


def available() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


class Pool:
    """Idle connections to one origin, newest last; at most ``limit`` open at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin, limit: int, connect_timeout: float,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.loop = loop
        self.origin = origin
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.ssl_context = ssl_context
        self.idle: deque[Connection] = deque()
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        #: Set by :meth:`close` (the transport's aclose): connections in use then are closed
        #: when released, not parked in a pool nobody will close again.
        self.closed = False

    async def acquire(self, hint: str | None) -> Connection:
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

    async def _connect(self, hint: str | None) -> Connection:
        origin = self.origin
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: Connection(self), origin.host, origin.port,
                    ssl=self.ssl_context if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None)
        except builtins.TimeoutError:  # asyncio.timeout's; ours is cloverleaf._errors.TimeoutError
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

    def _take(self, conn: Connection) -> Connection:
        conn.in_pool = False
        conn.reused = True
        return conn

    def release(self, conn: Connection) -> None:
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

    def forget(self, conn: Connection) -> None:
        """An idle connection the server closed: out of the deque, and no longer counted."""
        try:
            self.idle.remove(conn)
        except ValueError:
            return
        conn.in_pool = False
        self.open -= 1

    def _discard(self, conn: Connection) -> None:
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
        self._pools: dict[asyncio.AbstractEventLoop, dict[Any, Pool]] = {}
        self._origins: dict[str, Origin] = {}
        self._ssl: ssl.SSLContext | None = None

    # -- pools ------------------------------------------------------------------------------
    def _origin(self, url: str) -> Origin:
        origin = self._origins.get(url)
        if origin is None:
            if len(self._origins) >= 1024:
                self._origins.clear()
            origin = self._origins[url] = Origin(url)
        return origin

    def _pool(self, origin: Origin) -> Pool:
        loop = asyncio.get_running_loop()
        pools = self._pools.get(loop)
        if pools is None:
            pools = self._pools[loop] = {}
        pool = pools.get(origin.key)
        if pool is None:
            pool = pools[origin.key] = Pool(loop, origin, self.max_connections, self.connect_timeout,
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
    async def _open(self, req: HttpRequest, hint: str | None) -> tuple[Pool, Connection]:
        """Send ``req`` and wait for the response head; a stale kept-alive connection is
        replaced at once (at most twice: then the failure is real)."""
        if req.method == "HEAD":  # a HEAD response announces a body it does not send
            err = TransportError("the h1 client does not send HEAD requests; set http_client = \"httpx\"",
                                 url=_where(req.url))
            err.retryable = False  # it would fail the same way every time
            raise err
        origin = self._origin(req.url)
        head = request_head(req.method, origin, req.headers, req.body)
        pool = self._pool(origin)
        timeout = req.timeout or self.timeout
        for _ in range(3):
            conn = await pool.acquire(hint)
            try:
                conn.send(head, req.body, timeout)
                while not conn.headers_done:
                    await conn.wait()
            except Stale:
                pool.release(conn)
                continue
            except BaseException:
                conn.close()
                pool.release(conn)
                raise
            return pool, conn
        raise TransportError(f"connection dropped by {origin.where}: closed before a response", url=origin.where)

    async def _read_all(self, pool: Pool, conn: Connection) -> bytes:
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
        async def exchange() -> HttpResponse:
            pool, conn = await self._open(req, hint)
            status, headers = conn.status, dict(conn.headers)
            return HttpResponse(status, headers, await self._read_all(pool, conn), req.url)

        return await send_with_retries(Retry(self.retry.limited(max_retries), req.url, hint, map_h1_exception),
                                       exchange)

    # -- streams ----------------------------------------------------------------------------
    def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                hint: str | None = None) -> AbstractAsyncContextManager[StreamHandle]:
        """Open a streaming response, with :func:`~cloverleaf.transport.core.stream_with_retries`."""

        async def open_once() -> OpenedStream:
            pool, conn = await self._open(req, hint)
            status, headers = conn.status, dict(conn.headers)
            if status >= 400:
                return OpenedStream(status, headers, await self._read_all(pool, conn))

            async def release() -> None:
                if not conn.complete:
                    conn.close()  # abandoned mid-stream: the connection cannot be reused
                pool.release(conn)

            return OpenedStream(status, headers, None, _chunks(conn), release)

        retry = Retry(self.retry.limited(max_retries), req.url, hint, map_h1_exception)
        return stream_with_retries(retry, req.url, open_once)



async def _chunks(conn: Connection) -> AsyncIterator[bytes]:
    """The body as it arrives: everything buffered since the last step, in one piece."""
    while True:
        if conn.chunks:
            yield conn.take()
        elif conn.complete:
            return
        else:
            await conn.wait()


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
