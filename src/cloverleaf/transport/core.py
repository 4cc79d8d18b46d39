"""The only module that does network I/O: send an :class:`HttpRequest`, return bytes.

One pooled httpx client (sync and async, created lazily) per ``Client``, reused for every
call. Retries live here, once, for every provider: 408/409/429/5xx/529 and connection
errors are retried with exponential backoff and full jitter, honouring ``retry-after-ms``
and ``Retry-After`` (and the providers' ``x-should-retry`` hint), bounded by
``max_retries``. A wait longer than ``max_retry_wait`` is not slept through: the error goes
back to the caller (the gateway can fall back to another target instead of idling).

Connection failures become :class:`~cloverleaf.errors.ConnectError` naming the URL and,
for local servers, what to start. Requests to the fake provider's host never touch the
network: they are served in-process by the Client's own ``FakeUpstream``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._errors import ConnectError, TimeoutError, TransportError
from .._http import HttpRequest, HttpResponse
from ..providers.base import parse_retry_after

if TYPE_CHECKING:
    import httpx

FAKE_HOST_PREFIX = "http://fake.cloverleaf.invalid"
#: The async HTTP clients a Transport can use for real network calls (see ``_backend_for``).
HTTP_CLIENTS = ("auto", "h1", "aiohttp", "httpx")
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(slots=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    #: A provider asking us to wait longer than this gets its error back instead.
    max_retry_wait: float = 60.0

    def delay(self, attempt: int, headers: dict[str, str] | None) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or None to give up."""
        if attempt > self.max_retries:
            return None
        if headers:
            hint = headers.get("x-should-retry")
            if hint == "false":
                return None
            asked = parse_retry_after(headers)
            if asked is not None:
                return asked if asked <= self.max_retry_wait else None
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(backoff / 2, backoff)  # jitter keeps many clients from retrying in lockstep

    def limited(self, max_retries: int | None) -> RetryPolicy:
        """This policy with another retry budget (itself when ``max_retries`` is None or the same)."""
        if max_retries is None or max_retries == self.max_retries:
            return self
        return RetryPolicy(max_retries, self.base_delay, self.max_delay, self.max_retry_wait)

    @staticmethod
    def retryable_status(status: int, headers: dict[str, str]) -> bool:
        hint = headers.get("x-should-retry")
        if hint == "true":
            return True
        if hint == "false":
            return False
        return status in RETRY_STATUSES


class StreamHandle:
    """An open streaming response: check ``status`` first; iterate ``chunks()`` for bytes."""

    __slots__ = ("status", "headers", "url", "_chunks")

    def __init__(self, status: int, headers: dict[str, str], url: str, chunks: Any) -> None:
        self.status = status
        self.headers = headers
        self.url = url
        self._chunks = chunks

    def chunks(self) -> Any:
        return self._chunks


def _lower_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers.raw}


class Transport:
    """Sends requests with pooled connections, timeouts and retries. Thread-safe for sync use."""

    def __init__(self, *, timeout: float = 600.0, connect_timeout: float = 10.0, max_retries: int = 2,
                 max_connections: int = 1000, fake: Any = None, retry: RetryPolicy | None = None,
                 http_client: str = "auto") -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.max_connections = max_connections
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._fake = fake
        self._fake_sync: httpx.Client | None = None
        self._fake_async: httpx.AsyncClient | None = None
        #: Test hook: an httpx transport to use instead of the network (a provider-side mock).
        self.mock: Any = None
        if http_client not in HTTP_CLIENTS:
            from .._errors import ConfigError

            raise ConfigError(f"http_client must be one of {', '.join(HTTP_CLIENTS)}, not {http_client!r}")
        self.http_client = http_client
        #: The async backend for real network calls (h1 or aiohttp), chosen on first use; None: httpx.
        self.async_backend: Any = None
        self._backend_chosen = False

    # -- clients --------------------------------------------------------------------------
    @property
    def fake(self) -> Any:
        """This transport's in-process fake upstream (created on first use)."""
        if self._fake is None:
            from ..providers.fake.adapter import FakeUpstream

            self._fake = FakeUpstream()
        return self._fake

    def _timeout(self, req: HttpRequest) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(req.timeout or self.timeout, connect=self.connect_timeout)

    def _client(self, url: str) -> httpx.Client:
        import httpx

        if url.startswith(FAKE_HOST_PREFIX):
            if self._fake_sync is None:
                self._fake_sync = httpx.Client(transport=self.fake)
            return self._fake_sync
        if self._sync is None:
            limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=100)
            self._sync = httpx.Client(limits=limits, transport=self.mock, follow_redirects=False)
        return self._sync

    def _aclient(self, url: str) -> httpx.AsyncClient:
        import httpx

        if url.startswith(FAKE_HOST_PREFIX):
            if self._fake_async is None:
                self._fake_async = httpx.AsyncClient(transport=self.fake)
            return self._fake_async
        if self._async is None:
            limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=100)
            self._async = httpx.AsyncClient(limits=limits, transport=self.mock, follow_redirects=False)
        return self._async

    def close(self) -> None:
        for c in (self._sync, self._fake_sync):
            if c is not None:
                c.close()
        self._sync = self._fake_sync = None

    async def aclose(self) -> None:
        if self.async_backend is not None:
            await self.async_backend.aclose()
        for c in (self._async, self._fake_async):
            if c is not None:
                await c.aclose()
        self._async = self._fake_async = None
        self.close()

    # -- one-shot requests ------------------------------------------------------------------
    # The sync and async methods are twins by necessity (one sleeps, one awaits); all the
    # retry decisions they share live in Retry.
    def send(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        retry = Retry(self.retry.limited(max_retries), req.url, hint)
        client = self._client(req.url)
        while True:
            try:
                r = client.request(req.method, req.url, headers=req.headers, content=req.body,
                                   timeout=self._timeout(req))
            except Exception as exc:  # noqa: BLE001 - mapped by Retry
                time.sleep(retry.after_exception(exc))
                continue
            resp = HttpResponse(r.status_code, _lower_headers(r.headers), r.content, req.url)
            wait = retry.after_response(resp)
            if wait is None:
                return resp
            time.sleep(wait)

    def _backend_for(self, url: str) -> Any:
        """The async backend for a real network call. Chosen once, by measurement (bench/):
        httpx's async pool costs ~10x the CPU per request under concurrency (it walks every
        pooled connection per request), aiohttp's request machinery about a quarter of the
        gateway's CPU; the lean HTTP/1.1 client costs least. ``auto`` takes it when
        ``httptools`` is importable and no proxy is set in the environment (httpx honours
        proxies; the lean clients do not). The fake upstream and the test mock stay on httpx."""
        if not self._backend_chosen:
            self._backend_chosen = True
            if self.async_backend is None:
                self.async_backend = self._choose_backend()
        if self.async_backend is None or self.mock is not None or url.startswith(FAKE_HOST_PREFIX):
            return None
        return self.async_backend

    def _choose_backend(self) -> Any:
        choice, _ = resolve_http_client(self.http_client)
        kw: dict[str, Any] = {"timeout": self.timeout, "connect_timeout": self.connect_timeout,
              "max_connections": self.max_connections, "retry": self.retry}
        if choice == "h1":
            from .h1.pool import H1Transport

            return H1Transport(**kw)
        if choice == "aiohttp":
            from .aiohttp import AiohttpTransport

            return AiohttpTransport(**kw)
        return None

    async def asend(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        backend = self._backend_for(req.url)
        if backend is not None:
            return await backend.asend(req, max_retries=max_retries, hint=hint)  # type: ignore[no-any-return]
        client = self._aclient(req.url)

        async def exchange() -> HttpResponse:
            r = await client.request(req.method, req.url, headers=req.headers, content=req.body,
                                     timeout=self._timeout(req))
            return HttpResponse(r.status_code, _lower_headers(r.headers), r.content, req.url)

        return await send_with_retries(Retry(self.retry.limited(max_retries), req.url, hint), exchange)

    # -- streams ----------------------------------------------------------------------------
    @contextmanager
    def stream(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> Iterator[StreamHandle]:
        """Open a streaming response. Retries happen only before any byte is handed out.
        An error status is returned with its full body read (``chunks()`` yields it once)."""
        retry = Retry(self.retry.limited(max_retries), req.url, hint)
        client = self._client(req.url)
        while True:
            try:
                r = client.send(client.build_request(req.method, req.url, headers=req.headers, content=req.body,
                                                     timeout=self._timeout(req)), stream=True)
                headers = _lower_headers(r.headers)
                body = _read_error_body(r) if r.status_code >= 400 else None
            except Exception as exc:  # noqa: BLE001 - mapped by Retry
                time.sleep(retry.after_exception(exc))
                continue
            if body is not None:
                wait = retry.after_response(HttpResponse(r.status_code, headers, body, req.url))
                if wait is not None:
                    time.sleep(wait)
                    continue
                yield StreamHandle(r.status_code, headers, req.url, iter((body,)))
                return
            try:
                yield StreamHandle(r.status_code, headers, req.url, _iter_bytes(r, req.url, hint))
            finally:
                r.close()
            return

    def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                hint: str | None = None) -> AbstractAsyncContextManager[StreamHandle]:
        backend = self._backend_for(req.url)
        if backend is not None:
            return backend.astream(req, max_retries=max_retries, hint=hint)  # type: ignore[no-any-return]
        client = self._aclient(req.url)

        async def open_once() -> OpenedStream:
            r = await client.send(client.build_request(req.method, req.url, headers=req.headers, content=req.body,
                                                       timeout=self._timeout(req)), stream=True)
            headers = _lower_headers(r.headers)
            if r.status_code >= 400:
                return OpenedStream(r.status_code, headers, await _aread_error_body(r))
            return OpenedStream(r.status_code, headers, None, _aiter_bytes(r, req.url, hint), r.aclose)

        return stream_with_retries(Retry(self.retry.limited(max_retries), req.url, hint), req.url, open_once)

    # -- helpers ----------------------------------------------------------------------------




class Retry:
    """The retry decisions of one request, shared by the four send/stream twins."""

    __slots__ = ("policy", "url", "hint", "attempt", "mapper")

    def __init__(self, policy: RetryPolicy, url: str, hint: str | None, mapper: Any = None) -> None:
        self.policy = policy
        self.url = url
        self.hint = hint
        self.attempt = 0
        self.mapper = mapper or map_exception

    def after_exception(self, exc: BaseException) -> float:
        """Seconds to wait before trying again; raises the mapped error when giving up."""
        self.attempt += 1
        err = self.mapper(exc, self.url, self.hint)
        wait = self.policy.delay(self.attempt, None) if err.retryable else None
        if wait is None:
            raise err from exc
        return wait

    def after_response(self, resp: HttpResponse) -> float | None:
        """Seconds to wait before trying again, or None to hand this response back."""
        self.attempt += 1
        if resp.status < 400 or not self.policy.retryable_status(resp.status, resp.headers):
            return None
        return self.policy.delay(self.attempt, resp.headers)


def _read_error_body(r: httpx.Response) -> bytes:
    try:
        return r.read()
    finally:
        r.close()


async def _aread_error_body(r: httpx.Response) -> bytes:
    try:
        return await r.aread()
    finally:
        await r.aclose()


def _iter_bytes(r: httpx.Response, url: str, hint: str | None) -> Iterator[bytes]:
    try:
        yield from r.iter_raw()
    except Exception as exc:
        raise map_exception(exc, url, hint, mid_stream=True) from exc


async def _aiter_bytes(r: httpx.Response, url: str, hint: str | None) -> AsyncIterator[bytes]:
    try:
        async for chunk in r.aiter_raw():
            yield chunk
    except Exception as exc:
        raise map_exception(exc, url, hint, mid_stream=True) from exc


def resolve_http_client(setting: str) -> tuple[str, str]:
    """Which async client ``http_client = setting`` means here, and why (``cloverleaf doctor``
    prints both): ``auto`` takes the lean h1 client when httptools is installed and no proxy
    is set (httpx honours proxies; the lean clients do not), else aiohttp, else httpx."""
    if setting != "auto":
        return setting, "set by http_client"
    import importlib.util
    import urllib.request

    from .h1 import pool as transport_h1

    # getproxies() also reports NO_PROXY (as "no"), which names no proxy to honour
    proxies = sorted(scheme for scheme in urllib.request.getproxies() if scheme != "no")
    if proxies:
        return "httpx", f"a proxy is set for {', '.join(proxies)}, which httpx honours"
    if transport_h1.available():
        return "h1", "httptools is installed and no proxy is set"
    if importlib.util.find_spec("aiohttp") is not None:
        return "aiohttp", "httptools is not installed"
    return "httpx", "neither httptools nor aiohttp is installed (pip install 'cloverleaf[server]')"


async def send_with_retries(retry: Retry, exchange: Callable[[], Awaitable[HttpResponse]]) -> HttpResponse:
    """The async one-shot loop of every backend: an exception or a retryable status waits as
    ``retry`` says and tries again (or raises the mapped error); anything else is the answer."""
    while True:
        try:
            resp = await exchange()
        except Exception as exc:  # noqa: BLE001 - mapped by Retry
            await asyncio.sleep(retry.after_exception(exc))
            continue
        wait = retry.after_response(resp)
        if wait is None:
            return resp
        await asyncio.sleep(wait)


@dataclass(slots=True)
class OpenedStream:
    """One attempt at a stream, as a backend opened it: an error status with its whole body
    read (its connection already let go), or a success with its chunks and ``release``, which
    lets the connection go once the caller is done (back to the pool, or closed mid-body)."""

    status: int
    headers: dict[str, str]
    error_body: bytes | None
    chunks: AsyncIterator[bytes] | None = None
    release: Callable[[], Awaitable[None]] | None = None


@asynccontextmanager
async def stream_with_retries(retry: Retry, url: str,
                              open_once: Callable[[], Awaitable[OpenedStream]]) -> AsyncIterator[StreamHandle]:
    """The async stream loop of every backend: retries happen only before any byte is handed
    out; an error status that is not retried comes back with its body (``chunks()`` yields it
    once)."""
    while True:
        try:
            opened = await open_once()
        except Exception as exc:  # noqa: BLE001 - mapped by Retry
            await asyncio.sleep(retry.after_exception(exc))
            continue
        if opened.error_body is not None:
            wait = retry.after_response(HttpResponse(opened.status, opened.headers, opened.error_body, url))
            if wait is not None:
                await asyncio.sleep(wait)
                continue
            yield StreamHandle(opened.status, opened.headers, url, single_chunk(opened.error_body))
            return
        try:
            yield StreamHandle(opened.status, opened.headers, url, opened.chunks)
        finally:
            if opened.release is not None:
                await opened.release()
        return


async def single_chunk(body: bytes) -> AsyncIterator[bytes]:
    """A body already read, as a stream's ``chunks()`` (an error status on a stream)."""
    yield body


def _where(url: str) -> str:
    """The URL as errors may show it: no query string (it may carry a key) and no
    ``user:password@`` (a base_url may carry credentials)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}"


def map_exception(exc: BaseException, url: str, hint: str | None = None, *, mid_stream: bool = False) -> TransportError:
    """Turn an httpx exception into our error tree, naming the URL (never its query string,
    which may carry a key) and, for a refused local server, what to start."""
    import httpx

    if isinstance(exc, TransportError):
        return exc
    where = _where(url)
    if isinstance(exc, httpx.ConnectTimeout):
        return TimeoutError(f"timed out connecting to {where}; is the server reachable?", url=where)
    if isinstance(exc, httpx.TimeoutException):
        what = "waiting for the next chunk of the stream from" if mid_stream else "waiting for a response from"
        return TimeoutError(f"timed out {what} {where}; raise timeout= if the model is slow", url=where)
    if isinstance(exc, httpx.ConnectError):
        msg = f"could not connect to {where}: {exc}"
        if hint:
            msg += f"; {hint}"
        return ConnectError(msg, url=where)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        what = "connection dropped mid-stream" if mid_stream else "connection dropped"
        return TransportError(f"{what} by {where}: {type(exc).__name__}", url=where)
    if isinstance(exc, httpx.UnsupportedProtocol):
        err = TransportError(f"unsupported URL {where!r}: base_url must start with http:// or https://", url=where)
        err.retryable = False
        return err
    if isinstance(exc, httpx.HTTPError):
        return TransportError(f"HTTP error talking to {where}: {type(exc).__name__}: {exc}", url=where)
    raise exc
