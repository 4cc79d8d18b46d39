"""An aiohttp backend for the transport's async path: the server's hot path.

Why: under concurrency httpx's async pool costs far more CPU than the request itself.
httpcore walks every pooled connection for every request (``_assign_requests_to_connections``
calls ``has_expired`` on each, which asks anyio for socket attributes), so at 64 concurrent
requests to one upstream the pool, not the gateway, is the bottleneck (measured in
``bench/``: see ``bench/README.md``). aiohttp's connector keeps idle connections in a
per-host deque and its HTTP parser is written in C, so the same work costs a fraction.

This class keeps the async half of :mod:`cloverleaf.transport.base`'s contract (``asend``
and ``astream``): retries through :mod:`cloverleaf.transport.retry`, an error status
returned (not raised) with its body read, failures raised as the same error classes with the
same wording. The sync path and the mounts stay on httpx: the Transport only hands real
network calls over to this backend.

Timeouts: ``sock_connect`` is the connect timeout; aiohttp's ``sock_read`` cannot tell the
wait for the head from the wait between body pieces, so the head is awaited under
``asyncio.timeout(connect + first_byte)`` (aiohttp does not say when the connection is up, so
the first-byte wait here includes connecting) and each body piece under ``asyncio.timeout(idle)``.

One ``ClientSession`` per event loop (aiohttp binds a session to the loop it was created
on); it is created on first use and closed by :meth:`close` / :meth:`aclose`. The sessions of
loops that have closed (each ``asyncio.run()`` closes its own) are let go, their sockets closed,
when the next loop comes; a forked child drops every session it inherited (see
:mod:`.fork_hooks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from .._errors import (
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    LocalProtocolError,
    ReadTimeout,
    RemoteProtocolError,
    TLSError,
    TransportError,
)
from .._http import HttpRequest, HttpResponse, is_success
from . import fork_hooks
from .base import (
    AsyncStreamHandle,
    OpenedStream,
    Timeouts,
    connect_message,
    dropped_message,
    invalid_host_message,
    invalid_url_message,
    redact_url,
    timeout_message,
)
from .dead_loops import close_socket, running_loop
from .retry import Retry, RetryPolicy, aretrying, astream_with_retries

if TYPE_CHECKING:
    import aiohttp


def _import_aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("the aiohttp transport needs aiohttp: pip install 'cloverleaf[server]'") from None
    return aiohttp


class AiohttpTransport:
    """Sends requests with aiohttp's pooled connections, with the Transport's retry rules."""

    def __init__(self, *, timeouts: Timeouts | None = None, max_connections: int = 1000,
                 retry: RetryPolicy | None = None, max_retries: int = 2) -> None:
        self.timeouts = timeouts or Timeouts()
        self.max_connections = max_connections
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        self._client_timeout: aiohttp.ClientTimeout | None = None
        self._urls: dict[str, Any] = {}
        fork_hooks.register(self)

    # -- sessions ---------------------------------------------------------------------------
    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            if session is None:
                self._let_go_of_closed_loops()
            aiohttp = _import_aiohttp()
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0, ttl_dns_cache=300,
                                             keepalive_timeout=30)
            # auto_decompress: bodies and stream chunks arrive decoded, whatever the upstream's encoding.
            session = aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False,
                                            cookie_jar=aiohttp.DummyCookieJar())
            self._sessions[loop] = session
        return session

    def _timeout(self) -> aiohttp.ClientTimeout:
        if self._client_timeout is None:
            aiohttp = _import_aiohttp()
            # the read waits are ours (asyncio.timeout around the head and each body piece)
            self._client_timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=self.timeouts.connect,
                                                         sock_read=None)
        return self._client_timeout

    def _let_go_of_closed_loops(self) -> None:
        """The first request on a new loop: the sessions of loops closed since are let go here,
        once per loop. Without it every ``asyncio.run()`` left its loop, its session and an open
        upstream socket behind for good."""
        for owner in [known for known in list(self._sessions) if known.is_closed()]:
            session = self._sessions.pop(owner, None)
            if session is not None:
                _abandon(session)

    def close(self) -> None:
        """Close every loop's session except this thread's running loop's (:meth:`aclose`
        closes that one): a loop running in another thread is asked to close its own, the
        sockets of a closed loop are closed here (see :mod:`.dead_loops`), an idle loop's
        session is closed on it when no loop runs in this thread."""
        current = running_loop()
        for owner in list(self._sessions):
            if owner is current:
                continue
            session = self._sessions.pop(owner, None)
            if session is None or session.closed:
                continue
            if owner.is_closed():
                _abandon(session)
            elif owner.is_running():
                owner.call_soon_threadsafe(owner.create_task, session.close())
            elif current is None:
                owner.run_until_complete(session.close())
            else:  # an idle loop, and this thread busy with another: it stays until its loop runs
                self._sessions[owner] = session

    async def aclose(self) -> None:
        """Close every session: this loop's here, the others' as :meth:`close` does."""
        loop = asyncio.get_running_loop()
        session = self._sessions.pop(loop, None)
        self.close()
        if session is not None and not session.closed:
            await session.close()

    def after_fork_in_child(self) -> None:
        """In a forked child: the inherited sessions hold the parent's connections. Those of a
        closed loop have this process's copy of their sockets closed; the others are kept
        referenced, never used (collected, aiohttp would close their connections on the loop,
        unregistering them from the epoll instance the child shares with the parent)."""
        sessions, self._sessions = self._sessions, {}
        for owner, session in sessions.items():
            if owner.is_closed():
                _abandon(session)
            else:
                _DISOWNED.append(session)

    def _url(self, url: str) -> Any:
        """The parsed URL, cached: a target's URL is the same on every call, and parsing it
        was measurable per request. encoded=True sends it exactly as the adapter built it
        (signed URLs must not be re-quoted)."""
        parsed = self._urls.get(url)
        if parsed is None:
            from yarl import URL

            if len(self._urls) >= 1024:
                self._urls.clear()
            parsed = self._urls[url] = URL(url, encoded=True)
        return parsed

    async def _request(self, req: HttpRequest, retry: Retry) -> aiohttp.ClientResponse:
        t = retry.timeouts or self.timeouts
        try:
            async with asyncio.timeout(retry.head_wait(t.connect + t.first_byte)):
                r = await self._session().request(req.method, self._url(req.url), headers=req.headers,
                                                  data=req.body, timeout=self._timeout(), allow_redirects=False)
            retry.head_came()
            return r
        except TimeoutError as exc:
            if isinstance(exc, _import_aiohttp().ServerTimeoutError):
                raise  # aiohttp's own (sock_connect): mapped as a connect timeout
            raise ReadTimeout(timeout_message("first_byte", redact_url(req.url), t.first_byte),
                              url=redact_url(req.url)) from None

    def _retry(self, req: HttpRequest, max_retries: int | None, hint: str | None) -> Retry:
        return Retry(self.retry.limited(max_retries), req.url, hint, map_aiohttp_exception,
                     self.timeouts.for_request(req))

    # -- one-shot requests ------------------------------------------------------------------
    async def asend(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        retry = self._retry(req, max_retries, hint)

        async def attempt() -> HttpResponse:
            r = await self._request(req, retry)
            try:
                body = b"".join([chunk async for chunk in _aiter_chunks(r, retry)])
            finally:
                r.release()
            return HttpResponse(r.status, _lower_headers(r), body, req.url)

        return await aretrying(retry, attempt)

    # -- streams ----------------------------------------------------------------------------
    def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                hint: str | None = None) -> AbstractAsyncContextManager[AsyncStreamHandle]:
        """Open a streaming response (see :func:`~cloverleaf.transport.retry.astream_with_retries`)."""
        retry = self._retry(req, max_retries, hint)

        async def open_once() -> OpenedStream:
            r = await self._request(req, retry)
            headers = _lower_headers(r)
            if not is_success(r.status):   # a 3xx too: never followed, reported whole
                return OpenedStream(r.status, headers, await _read_error_body(r, retry))

            async def release() -> None:
                if r.content.at_eof():
                    r.release()  # fully read: the connection goes back to the pool
                else:
                    r.close()  # abandoned mid-stream: the connection cannot be reused

            return OpenedStream(r.status, headers, None, _aiter_chunks(r, retry), release)

        return astream_with_retries(retry, req.url, open_once)


#: Sessions a forked child inherited on a loop still open: never used, never collected.
_DISOWNED: list[Any] = []


def _abandon(session: aiohttp.ClientSession) -> None:
    """Close the sockets of a session whose loop is closed, then mark its connector closed
    (aiohttp's own close needs the loop: on a closed one it only forgets the connections)."""
    connector = session.connector
    if connector is None:
        return
    pooled = getattr(connector, "_conns", {})   # aiohttp's idle connections, per host
    for entries in list(pooled.values()):
        for protocol, _ in list(entries):
            close_socket(getattr(protocol, "transport", None))
    for protocol in list(getattr(connector, "_acquired", ())):
        close_socket(getattr(protocol, "transport", None))
    close_now = getattr(connector, "_close", None)
    if close_now is not None:
        try:
            close_now()
        except RuntimeError:  # pragma: no cover - a waiter's callback on the closed loop
            pass


async def _read_error_body(r: aiohttp.ClientResponse, retry: Retry) -> bytes:
    try:
        return b"".join([chunk async for chunk in _aiter_chunks(r, retry)])
    except BaseException:
        r.close()
        raise
    finally:
        r.release()


def _lower_headers(r: aiohttp.ClientResponse) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in r.raw_headers}


async def _aiter_chunks(r: aiohttp.ClientResponse, retry: Retry) -> AsyncIterator[bytes]:
    """The body as it arrives, each piece within ``idle`` seconds of the last (the call's
    deadline bounds the wait for the head only)."""
    idle = (retry.timeouts or Timeouts()).idle
    pieces = r.content.iter_any().__aiter__()
    try:
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await pieces.__anext__()
            except StopAsyncIteration:
                return
            yield chunk
    except TimeoutError as exc:
        where = redact_url(retry.url)
        raise ReadTimeout(timeout_message("idle", where, idle), url=where) from exc
    except Exception as exc:
        raise map_aiohttp_exception(exc, retry.url, retry.hint, mid_stream=True, timeouts=retry.timeouts) from exc


def map_aiohttp_exception(exc: BaseException, url: str, hint: str | None = None, *, mid_stream: bool = False,
                          timeouts: Timeouts | None = None) -> TransportError:
    """aiohttp's exceptions in our error tree, worded as the other backends' (see
    :mod:`cloverleaf.transport.base`)."""
    aiohttp = _import_aiohttp()
    if isinstance(exc, TransportError):
        return exc
    where = redact_url(url)
    t = timeouts or Timeouts()
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)) and not mid_stream:
        # sock_connect is the only aiohttp timeout set: ServerTimeoutError is a connect timeout
        return ConnectTimeout(timeout_message("connect", where, t.connect), url=where)
    if isinstance(exc, asyncio.TimeoutError):
        return ReadTimeout(timeout_message("idle", where, t.idle), url=where)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TLSError(f"TLS handshake with {where} failed: {exc.certificate_error}", url=where)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(connect_message(where, exc.os_error or exc, hint), url=where)
    if isinstance(exc, (aiohttp.InvalidURL, getattr(aiohttp, "NonHttpUrlClientError", aiohttp.InvalidURL))):
        return InvalidURL(invalid_url_message(where), url=where)
    if isinstance(exc, UnicodeError):   # the IDNA codec refused the host name (a label over 63 characters)
        return InvalidURL(invalid_host_message(where, exc), url=where)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError,
                        aiohttp.ClientResponseError)):
        return RemoteProtocolError(dropped_message(where, type(exc).__name__, mid_stream=mid_stream), url=where)
    if isinstance(exc, aiohttp.ClientError):
        return TransportError(f"HTTP error talking to {where}: {type(exc).__name__}: {exc}", url=where)
    if isinstance(exc, ValueError) and not mid_stream:  # aiohttp refusing a header or method as written
        return LocalProtocolError(f"the request to {where} cannot be sent: {exc}", url=where)
    raise exc
