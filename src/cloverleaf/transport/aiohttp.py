"""An aiohttp backend for the transport's async path: the server's hot path.

Why: under concurrency httpx's async pool costs far more CPU than the request itself.
httpcore walks every pooled connection for every request (``_assign_requests_to_connections``
calls ``has_expired`` on each, which asks anyio for socket attributes), so at 64 concurrent
requests to one upstream the pool, not the gateway, is the bottleneck (measured in
``bench/``: see ``bench/README.md``). aiohttp's connector keeps idle connections in a
per-host deque and its HTTP parser is written in C, so the same work costs a fraction.

This class has the same two async methods as :class:`~cloverleaf.transport.Transport`
(``asend`` and ``astream``) with the same contract: retries with backoff and
``Retry-After`` through the same :class:`~cloverleaf.transport.RetryPolicy`, an error status
returned (not raised) with its body read, connection failures mapped into the same error
tree (naming the URL without its query string, and what to start for a local server).
The sync path, the in-process fake upstream and the httpx test hook (``Transport.mock``)
stay on httpx: the Transport only hands real network calls over to this backend.

One ``ClientSession`` per event loop (aiohttp binds a session to the loop it was created
on); it is created on first use and closed by :meth:`aclose`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from .._errors import ConnectError, TimeoutError, TransportError
from .._http import HttpRequest, HttpResponse
from .core import OpenedStream, Retry, RetryPolicy, StreamHandle, _where, send_with_retries, stream_with_retries

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

    def __init__(self, *, timeout: float = 600.0, connect_timeout: float = 10.0, max_connections: int = 1000,
                 retry: RetryPolicy | None = None, max_retries: int = 2) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, Any] = {}

    # -- sessions ---------------------------------------------------------------------------
    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            aiohttp = _import_aiohttp()
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0, ttl_dns_cache=300,
                                             keepalive_timeout=30)
            # auto_decompress: bodies and stream chunks arrive decoded, whatever the upstream's encoding.
            session = aiohttp.ClientSession(connector=connector, auto_decompress=True, trust_env=False,
                                            cookie_jar=aiohttp.DummyCookieJar())
            self._sessions[loop] = session
        return session

    def _timeout(self, req: HttpRequest) -> aiohttp.ClientTimeout:
        seconds = req.timeout or self.timeout
        cached = self._timeouts.get(seconds)
        if cached is None:
            aiohttp = _import_aiohttp()
            # sock_read: the longest wait for the next bytes (httpx's read timeout); no total cap.
            cached = self._timeouts[seconds] = aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=self.connect_timeout, sock_read=seconds)
        return cached

    async def aclose(self) -> None:
        """Close this loop's session (sessions of loops that are gone are dropped)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        sessions, self._sessions = self._sessions, {}
        for owner, session in sessions.items():
            if owner is loop and not session.closed:
                await session.close()

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

    async def _request(self, req: HttpRequest) -> aiohttp.ClientResponse:
        return await self._session().request(req.method, self._url(req.url), headers=req.headers,
                                             data=req.body, timeout=self._timeout(req), allow_redirects=False)

    # -- one-shot requests ------------------------------------------------------------------
    async def asend(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        async def exchange() -> HttpResponse:
            r = await self._request(req)
            try:
                body = await r.read()
            finally:
                r.release()
            return HttpResponse(r.status, _lower_headers(r), body, req.url)

        return await send_with_retries(Retry(self.retry.limited(max_retries), req.url, hint, map_aiohttp_exception),
                                       exchange)

    # -- streams ----------------------------------------------------------------------------
    def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                hint: str | None = None) -> AbstractAsyncContextManager[StreamHandle]:
        """Open a streaming response, with :func:`~cloverleaf.transport.core.stream_with_retries`."""

        async def open_once() -> OpenedStream:
            r = await self._request(req)
            headers = _lower_headers(r)
            if r.status >= 400:
                return OpenedStream(r.status, headers, await _read_error_body(r))

            async def release() -> None:
                if r.content.at_eof():
                    r.release()  # fully read: the connection goes back to the pool
                else:
                    r.close()  # abandoned mid-stream: the connection cannot be reused

            return OpenedStream(r.status, headers, None, _aiter_chunks(r, req.url, hint), release)

        retry = Retry(self.retry.limited(max_retries), req.url, hint, map_aiohttp_exception)
        return stream_with_retries(retry, req.url, open_once)



async def _read_error_body(r: aiohttp.ClientResponse) -> bytes:
    try:
        return await r.read()
    except BaseException:
        r.close()
        raise
    finally:
        r.release()


def _lower_headers(r: aiohttp.ClientResponse) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in r.raw_headers}


async def _aiter_chunks(r: aiohttp.ClientResponse, url: str, hint: str | None) -> AsyncIterator[bytes]:
    try:
        async for chunk in r.content.iter_any():
            yield chunk
    except Exception as exc:
        raise map_aiohttp_exception(exc, url, hint, mid_stream=True) from exc


def map_aiohttp_exception(exc: BaseException, url: str, hint: str | None = None, *,
                          mid_stream: bool = False) -> TransportError:
    """aiohttp's exceptions in our error tree, worded as :func:`cloverleaf.transport.core.map_exception`."""
    aiohttp = _import_aiohttp()
    if isinstance(exc, TransportError):
        return exc
    where = _where(url)
    connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", None)
    if connect_timeout is not None and isinstance(exc, connect_timeout):
        return TimeoutError(f"timed out connecting to {where}; is the server reachable?", url=where)
    if isinstance(exc, asyncio.TimeoutError):  # aiohttp's read timeouts subclass it
        what = "waiting for the next chunk of the stream from" if mid_stream else "waiting for a response from"
        return TimeoutError(f"timed out {what} {where}; raise timeout= if the model is slow", url=where)
    if isinstance(exc, aiohttp.ClientConnectorError):
        msg = f"could not connect to {where}: {exc.os_error or exc}"
        if hint:
            msg += f"; {hint}"
        return ConnectError(msg, url=where)
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)
                  if hasattr(aiohttp, "NonHttpUrlClientError") else aiohttp.InvalidURL):
        err = TransportError(f"unsupported URL {where!r}: base_url must start with http:// or https://", url=where)
        err.retryable = False
        return err
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
        what = "connection dropped mid-stream" if mid_stream else "connection dropped"
        return TransportError(f"{what} by {where}: {type(exc).__name__}", url=where)
    if isinstance(exc, aiohttp.ClientError):
        return TransportError(f"HTTP error talking to {where}: {type(exc).__name__}: {exc}", url=where)
    raise exc
