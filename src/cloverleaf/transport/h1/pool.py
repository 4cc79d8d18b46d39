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
This module holds the pools and the transport contract; the protocol itself is
:mod:`.head` (the request), :mod:`.parser` (the response's states) and :mod:`.connection`
(the asyncio protocol).

The contract is :mod:`cloverleaf.transport.base`'s: retries with backoff and ``Retry-After``
through :mod:`cloverleaf.transport.retry`, an error status returned (not raised) with its
body read, failures raised as the same error classes with the same wording. What HTTP/1.1
asks of a client is here: Content-Length, chunked and close-delimited bodies, 1xx interim
responses skipped, ``Connection: close`` honoured, gzip/deflate bodies decoded, TLS with
certificate checks. A request that meets a kept-alive connection the server has just
closed (the keep-alive race: no byte of a response came back) is sent again at once on a
new connection, at most twice; every other failure goes to the retry policy. That resend is
no new risk for a POST: a connection dropped before any response byte is a retryable error
under every backend's retry policy anyway (a server that took the request and then died
without a byte looks the same), and the resend only skips the backoff for the common case,
a server closing an idle connection as we reuse it. Timeouts are
:class:`~cloverleaf.transport.base.Timeouts`: connect, first byte (to the response head),
idle (between body pieces), and the call's deadline through the retry flow.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from ..._errors import (
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    LocalProtocolError,
    RemoteProtocolError,
    TLSError,
    TransportError,
)
from ..._http import HttpRequest, HttpResponse, is_success
from .. import fork_hooks
from ..base import (
    AsyncStreamHandle,
    OpenedStream,
    Timeouts,
    connect_message,
    dropped_message,
    invalid_host_message,
    redact_url,
    timeout_message,
)
from ..dead_loops import close_socket, running_loop
from ..retry import Retry, RetryPolicy, aretrying, astream_with_retries
from . import available as available
from .connection import Connection, Stale
from .head import Origin, request_head

#: Idle connections older than this are closed rather than reused (servers commonly drop
#: idle connections after 5-75 s; the keep-alive race is handled either way).
KEEPALIVE_SECONDS = 15.0


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
        #: the timer that closes connections idle for a keep-alive period (see :meth:`_expire`)
        self.sweep: asyncio.TimerHandle | None = None

    async def acquire(self, hint: str | None, where: str) -> Connection:
        """An idle connection, or a new one; ``where`` (the redacted URL of the request it is
        for) is what a failure to connect names: the pool's own origin is only the first URL
        of its host and port."""
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
            return await self._connect(hint, where)
        except BaseException:
            self.open -= 1
            self._wake_one()
            raise

    async def _connect(self, hint: str | None, where: str) -> Connection:
        origin = self.origin
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: Connection(self), origin.host, origin.port,
                    ssl=self.ssl_context if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None)
        except TimeoutError:  # the builtin, asyncio.timeout's
            raise ConnectTimeout(timeout_message("connect", where, self.connect_timeout),
                                 url=where) from None
        except ssl.SSLEOFError:  # closed mid-handshake: a dropped connection, worth another try
            raise ConnectError(f"TLS handshake with {where} was cut short", url=where) from None
        except ssl.SSLError as exc:
            raise TLSError(f"TLS handshake with {where} failed: {exc.reason or exc}",
                           url=where) from None
        except OSError as exc:
            raise ConnectError(connect_message(where, exc.strerror or exc, hint), url=where) from None
        return conn

    def _take(self, conn: Connection) -> Connection:
        conn.unpark()
        return conn

    def release(self, conn: Connection) -> None:
        """Back to the idle deque when the exchange finished cleanly; closed otherwise."""
        if conn.reusable() and not self.closed:
            if conn.paused and conn.transport is not None:
                # a stream left unread after its body ended with reading paused: without this the
                # next exchange on this connection would never see its response
                conn.paused = False
                conn.transport.resume_reading()
            conn.park()
            self.idle.append(conn)
            if self.sweep is None:
                self.sweep = self.loop.call_later(KEEPALIVE_SECONDS, self._expire)
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
        self.open -= 1

    def _expire(self) -> None:
        """Close the connections idle for a keep-alive period, and come back when the oldest
        left is due. Without it a pool shrank only when asked for a connection: after a burst of
        hundreds of upstream connections, a gateway that went quiet kept them all open (a socket
        each here, and a slot on the provider's side) until the provider dropped them."""
        self.sweep = None
        idle = self.idle
        now = self.loop.time()
        expired = now - KEEPALIVE_SECONDS
        while idle and idle[0].idle_since < expired:
            self._discard(idle.popleft())
        if idle and not self.closed:
            self.sweep = self.loop.call_later(idle[0].idle_since + KEEPALIVE_SECONDS - now, self._expire)
        self._wake_one()

    def _discard(self, conn: Connection) -> None:
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
        if self.sweep is not None:
            self.sweep.cancel()
            self.sweep = None
        while self.idle:
            self._discard(self.idle.pop())

    def abandon(self) -> None:
        """Close the idle connections' sockets here: the pool's loop is closed, so their
        transports' own close (a callback on that loop) would never run."""
        self.closed = True
        self.sweep = None  # a closed loop never fires it
        while self.idle:
            conn = self.idle.pop()
            conn.closed = True
            close_socket(conn.transport)
            self.open -= 1

    def disown(self) -> None:
        """In a forked child, a pool whose loop is still open: its connections are the parent's.
        They leave the pool untouched (closing them would unregister them from the epoll
        instance the child shares with the parent) and are never used again."""
        self.closed = True
        if self.sweep is not None:
            self.sweep.cancel()
            self.sweep = None
        self.idle.clear()


class H1Transport:
    """Sends requests over pooled HTTP/1.1 connections, with the Transport's retry rules.

    ``max_connections`` bounds the open connections to each upstream origin (scheme, host,
    port); aiohttp's bound is one total across origins. Pools belong to an event loop
    (connections cannot move between loops): one set per loop, created on first use and
    closed by :meth:`close` / :meth:`aclose`. The pools of a loop that has closed (each
    ``asyncio.run()`` closes its own) are let go, their sockets closed, when the next loop comes;
    a forked child drops every pool it inherited (see :mod:`..fork_hooks`)."""

    #: every connection a local-only request uses is checked (``HttpRequest.peer_check``)
    checks_peers = True

    def __init__(self, *, timeouts: Timeouts | None = None, max_connections: int = 1000,
                 retry: RetryPolicy | None = None, max_retries: int = 2) -> None:
        self.timeouts = timeouts or Timeouts()
        self.max_connections = max_connections
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._pools: dict[asyncio.AbstractEventLoop, dict[Any, Pool]] = {}
        self._origins: dict[str, Origin] = {}
        self._ssl: ssl.SSLContext | None = None
        fork_hooks.register(self)

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
            pools = self._pools_of_new_loop(loop)
        pool = pools.get(origin.key)
        if pool is None:
            pool = pools[origin.key] = Pool(loop, origin, self.max_connections, self.timeouts.connect,
                                              self._ssl_context() if origin.tls else None)
        return pool

    def _pools_of_new_loop(self, loop: asyncio.AbstractEventLoop) -> dict[Any, Pool]:
        """The first request on ``loop``: the pools of loops closed since are let go here, once
        per loop, so the hot path stays one dict lookup. Without it every ``asyncio.run()`` left
        its loop, its pools and an open upstream socket behind for good."""
        for owner in [known for known in list(self._pools) if known.is_closed()]:
            for pool in self._pools.pop(owner, {}).values():
                pool.abandon()
        pools: dict[Any, Pool] = {}
        self._pools[loop] = pools
        return pools

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
                    raise TLSError(f"could not load the CA certificates {var} names ({path}): {exc}") from None
            else:
                try:
                    import certifi

                    context = ssl.create_default_context(cafile=certifi.where())
                except ImportError:  # pragma: no cover - httpx brings certifi
                    context = ssl.create_default_context()
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    def close(self) -> None:
        """Close the connections of every loop's pools: this thread's running loop closes its
        own, a loop running in another thread is asked to close its own, the sockets of a
        closed loop are closed here (see :mod:`..dead_loops`), and a loop that is open but
        not running closes them when it runs next."""
        current = running_loop()
        for owner in list(self._pools):
            for pool in self._pools.pop(owner, {}).values():
                if owner is not current and owner.is_closed():
                    pool.abandon()
                elif owner is not current and owner.is_running():
                    owner.call_soon_threadsafe(pool.close)
                else:
                    pool.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaitable (the AsyncBackend contract)."""
        self.close()

    def after_fork_in_child(self) -> None:
        """In a forked child: the inherited pools are the parent's connections. Those of a
        closed loop have this process's copy of their sockets closed, the others are disowned
        (see :meth:`Pool.disown`); the child's calls open connections of their own."""
        pools, self._pools = self._pools, {}
        for owner, by_origin in pools.items():
            for pool in by_origin.values():
                if owner.is_closed():
                    pool.abandon()
                else:
                    pool.disown()

    # -- one exchange -------------------------------------------------------------------------
    def _retry(self, req: HttpRequest, max_retries: int | None, hint: str | None) -> Retry:
        return Retry(self.retry.limited(max_retries), req.url, hint, map_h1_exception, self.timeouts.for_request(req))

    async def _open(self, req: HttpRequest, retry: Retry) -> tuple[Pool, Connection]:
        """Send ``req`` and wait for the response head; a stale kept-alive connection is
        replaced at once (at most twice: then the failure is real)."""
        if req.method == "HEAD":  # a HEAD response announces a body it does not send
            raise LocalProtocolError("the h1 client does not send HEAD requests; set http_client = \"httpx\"",
                                     url=redact_url(req.url))
        origin = self._origin(req.url)
        head = request_head(req.method, origin, req.headers, req.body)
        pool = self._pool(origin)
        t = retry.timeouts or self.timeouts
        for _ in range(3):
            conn = await pool.acquire(retry.hint, origin.where)
            if req.peer_check is not None:   # a local-only call: where this connection really went
                try:
                    req.peer_check(conn.peer_address(), origin.where)
                except BaseException:
                    pool.release(conn)       # sound for calls that may go anywhere; nothing was sent
                    raise
            conn.where = origin.where  # this request's URL, not the first one of the pool's host
            try:
                conn.send(head, req.body, retry.head_wait(t.first_byte), t.idle)   # the body: idle, not the deadline
                while not conn.head_done:
                    await conn.wait()
            except Stale:
                pool.release(conn)
                continue
            except BaseException:
                conn.close()
                pool.release(conn)
                raise
            retry.head_came()
            return pool, conn
        raise RemoteProtocolError(dropped_message(origin.where, "closed before a response", mid_stream=False),
                                  url=origin.where)

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
        retry = self._retry(req, max_retries, hint)

        async def attempt() -> HttpResponse:
            pool, conn = await self._open(req, retry)
            status, headers = conn.status, dict(conn.headers)
            return HttpResponse(status, headers, await self._read_all(pool, conn), req.url)

        return await aretrying(retry, attempt)

    # -- streams ----------------------------------------------------------------------------
    def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                hint: str | None = None) -> AbstractAsyncContextManager[AsyncStreamHandle]:
        """Open a streaming response (see :func:`~cloverleaf.transport.retry.astream_with_retries`)."""
        retry = self._retry(req, max_retries, hint)

        async def open_once() -> OpenedStream:
            pool, conn = await self._open(req, retry)
            status, headers = conn.status, dict(conn.headers)
            if not is_success(status):   # a 3xx too: never followed, reported whole
                return OpenedStream(status, headers, await self._read_all(pool, conn))

            async def release() -> None:
                if not conn.complete:
                    conn.close()  # abandoned mid-stream: the connection cannot be reused
                pool.release(conn)

            return OpenedStream(status, headers, None, _chunks(conn), release)

        return astream_with_retries(retry, req.url, open_once)


async def _chunks(conn: Connection) -> AsyncIterator[bytes]:
    """The body as it arrives: everything buffered since the last step, in one piece."""
    while True:
        if conn.chunks:
            yield conn.take()
        elif conn.complete:
            return
        else:
            await conn.wait()


def map_h1_exception(exc: BaseException, url: str, hint: str | None = None, *, mid_stream: bool = False,
                     timeouts: Timeouts | None = None) -> TransportError:
    """Errors raised here are already in cloverleaf's tree; anything else from the socket
    layer is worded like the other backends'."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, OSError):
        where = redact_url(url)
        return RemoteProtocolError(dropped_message(where, type(exc).__name__, mid_stream=mid_stream), url=where)
    if isinstance(exc, UnicodeError):   # getaddrinfo's IDNA codec refused the host name (a label over 63)
        where = redact_url(url)
        return InvalidURL(invalid_host_message(where, exc), url=where)
    raise exc
