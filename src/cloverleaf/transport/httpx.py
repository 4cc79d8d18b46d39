"""The httpx backend: every sync call, async calls when proxies are set, and the mounts.

One pooled ``httpx.Client`` per backend and process, and one ``httpx.AsyncClient`` per event
loop, each created on first use (once, whichever threads ask at the same time) and reused for
every call: a forked child builds its own (:mod:`.fork_guard`), as a connection belongs to one
process, and an async one to the loop that opened it. A backend built with ``transport=``
sends through that httpx transport instead of the network: that is how a mount works (the
fake provider's in-process upstream, a test's ``httpx.MockTransport``), see
:class:`~cloverleaf.transport.auto.Transport`.

Timeouts: httpx has one read timeout for every socket read. The first read waits for the
response head, so the request goes out with ``read = first_byte``; once the head came, the
timeout in the request's extensions (which httpcore reads again when the body starts) is set
to ``idle`` for the body.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from .._errors import (
    ConnectError,
    ConnectTimeout,
    InvalidURL,
    LocalProtocolError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
)
from .._http import HttpRequest, HttpResponse, is_success
from .base import (
    AsyncStreamHandle,
    BoundedReads,
    OpenedStream,
    OpenedSyncStream,
    SyncStreamHandle,
    Timeouts,
    connect_message,
    dropped_message,
    invalid_host_message,
    invalid_url_message,
    redact_url,
    timeout_message,
)
from .dead_loops import close_socket
from .fork_guard import PerProcess
from .retry import Retry, RetryPolicy, aretrying, astream_with_retries, retrying, stream_with_retries

if TYPE_CHECKING:
    import httpx

    #: The async clients of one process, by event loop.
    LoopClients = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]


class HttpxBackend:
    """Sends requests with pooled httpx clients (sync and async), with the retry rules of
    :mod:`.retry`. Thread-safe for sync use, as ``httpx.Client`` is."""

    def __init__(self, *, timeouts: Timeouts | None = None, retry: RetryPolicy | None = None,
                 max_connections: int = 1000, transport: Any = None, peer_checked: bool = False) -> None:
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections
        #: An httpx transport to send through instead of the network (a mount), or None.
        self.transport = transport
        #: The backend of local-only calls (:attr:`HttpRequest.peer_check`): no proxy (the call
        #: goes straight to the local server, never through another host), and each new
        #: connection is checked once connected, before a byte is written (httpcore's ``trace``
        #: extension). Only such calls use its pools, so every pooled connection was checked.
        self.peer_checked = peer_checked
        #: This process's pooled sync client: built once however many threads make the first
        #: call, and again in a forked child, which must not share the parent's sockets.
        self._sync: PerProcess[httpx.Client] = PerProcess(self._new_client, _abandon_pools)
        #: This process's async clients, one per event loop (a connection belongs to the loop
        #: that opened it); weak keys, and a closed loop's client is dropped, its sockets closed
        #: (_drop_closed_loops).
        self._async: PerProcess[LoopClients] = PerProcess(weakref.WeakKeyDictionary, _abandon_loop_clients)

    # -- clients --------------------------------------------------------------------------
    def _new_client(self) -> httpx.Client:
        import httpx

        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=100)
        return httpx.Client(limits=limits, transport=self.transport, follow_redirects=False,
                            trust_env=not self.peer_checked)

    def _client(self) -> httpx.Client:
        return self._sync.get()

    def _aclient(self) -> httpx.AsyncClient:
        """The running loop's client. One shared across loops handed a second ``asyncio.run()``
        the first one's connections, whose loop was closed: a raw "Event loop is closed"."""
        loop = asyncio.get_running_loop()
        clients = self._async.get()
        client = clients.get(loop)
        if client is not None:
            return client
        import httpx

        with self._async.lock():
            client = clients.get(loop)
            if client is None:
                _drop_closed_loops(clients)
                limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=100)
                client = clients[loop] = httpx.AsyncClient(limits=limits, transport=self.transport,
                                                           follow_redirects=False, trust_env=not self.peer_checked)
            return client

    def proxied(self, url: str) -> bool:
        """Whether a blocking request to ``url`` goes through an HTTP proxy (the environment's
        ``HTTPS_PROXY``, ``HTTP_PROXY`` or ``ALL_PROXY``, not for a host ``NO_PROXY`` names): httpx's
        own answer, the one its client acts on, so a caller deciding by it and the request sent
        never disagree. False for this backend of local-only calls (it takes no proxy), and when
        httpx cannot say (its routing is not public API): the caller then checks the connection,
        which goes straight to the host."""
        if self.peer_checked:
            return False
        import httpx

        client = self._client()
        try:
            return client._transport_for_url(httpx.URL(url)) is not client._transport
        except (AttributeError, httpx.InvalidURL):
            return False

    def close(self) -> None:
        client = self._sync.take()
        if client is not None:
            client.close()
        clients = self._async.peek()
        if clients is not None:
            with self._async.lock():
                _drop_closed_loops(clients)

    async def aclose(self) -> None:
        """Close the running loop's client (and the sync one); clients of loops that are closed
        are dropped, those of other running loops are left to their own ``aclose``."""
        clients = self._async.peek()
        if clients is not None:
            with self._async.lock():
                client = clients.pop(asyncio.get_running_loop(), None)
                _drop_closed_loops(clients)
            if client is not None:
                await client.aclose()
        self.close()

    def _retry(self, req: HttpRequest, max_retries: int | None, hint: str | None) -> Retry:
        return Retry(self.retry.limited(max_retries), req.url, hint, map_httpx_exception,
                     self.timeouts.for_request(req))

    def _build(self, client: httpx.Client | httpx.AsyncClient, req: HttpRequest, retry: Retry) -> httpx.Request:
        import httpx

        t = retry.timeouts or Timeouts()
        head = retry.head_wait(t.first_byte)
        timeout = httpx.Timeout(connect=t.connect, read=head, write=t.idle, pool=head)
        extensions = None
        if req.peer_check is not None and self.transport is None:   # a mount answers in-process: no peer
            if not self.peer_checked:   # the Transport routes these here; a check never goes unmade
                raise RuntimeError("a local-only request reached an httpx backend that does not check peers")
            where = redact_url(req.url)
            hook = _apeer_hook if isinstance(client, httpx.AsyncClient) else _peer_hook
            extensions = {"trace": functools.partial(hook, req.peer_check, where)}
        return client.build_request(req.method, req.url, headers=req.headers, content=req.body, timeout=timeout,
                                    extensions=extensions)

    # -- sync -------------------------------------------------------------------------------
    def send(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        retry = self._retry(req, max_retries, hint)
        client = self._client()

        def attempt() -> HttpResponse:
            r = client.send(self._build(client, req, retry), stream=True)
            try:
                _body_timeout(r, retry)
                body = r.read()
            finally:
                r.close()
            return HttpResponse(r.status_code, _lower_headers(r.headers), body, req.url)

        return retrying(retry, attempt)

    def stream(self, req: HttpRequest, *, max_retries: int | None = None,
               hint: str | None = None) -> AbstractContextManager[SyncStreamHandle]:
        """Open a streaming response (see :func:`~cloverleaf.transport.retry.stream_with_retries`)."""
        retry = self._retry(req, max_retries, hint)
        client = self._client()

        def open_once() -> OpenedSyncStream:
            r = client.send(self._build(client, req, retry), stream=True)
            headers = _lower_headers(r.headers)
            _body_timeout(r, retry)
            if not is_success(r.status_code):   # a 3xx too: never followed, reported whole
                try:
                    return OpenedSyncStream(r.status_code, headers, r.read())
                finally:
                    r.close()
            return OpenedSyncStream(r.status_code, headers, None, _iter_bytes(r, retry), r.close, _bounded_reads(r))

        return stream_with_retries(retry, req.url, open_once)

    # -- async ------------------------------------------------------------------------------
    async def asend(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        retry = self._retry(req, max_retries, hint)
        client = self._aclient()

        async def attempt() -> HttpResponse:
            r = await client.send(self._build(client, req, retry), stream=True)
            try:
                _body_timeout(r, retry)
                body = await r.aread()
            finally:
                await r.aclose()
            return HttpResponse(r.status_code, _lower_headers(r.headers), body, req.url)

        return await aretrying(retry, attempt)

    def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                hint: str | None = None) -> AbstractAsyncContextManager[AsyncStreamHandle]:
        retry = self._retry(req, max_retries, hint)
        client = self._aclient()

        async def open_once() -> OpenedStream:
            r = await client.send(self._build(client, req, retry), stream=True)
            headers = _lower_headers(r.headers)
            _body_timeout(r, retry)
            if not is_success(r.status_code):   # a 3xx too: never followed, reported whole
                try:
                    return OpenedStream(r.status_code, headers, await r.aread())
                finally:
                    await r.aclose()
            return OpenedStream(r.status_code, headers, None, _aiter_bytes(r, retry), r.aclose)

        return astream_with_retries(retry, req.url, open_once)


#: httpcore's trace event for a new TCP connection, before TLS and before the request is written
_CONNECTED = "connection.connect_tcp.complete"


def _check_stream(check: Callable[[str, str], None], where: str, stream: Any) -> None:
    peer = stream.get_extra_info("server_addr")
    check(str(peer[0]) if peer else "", where)


def _peer_hook(check: Callable[[str, str], None], where: str, event: str, info: dict[str, Any]) -> None:
    """httpcore's trace callback: a new connection is checked once connected; a refused one is
    closed here, and the exception aborts the request before a byte of it is written."""
    if event == _CONNECTED:
        stream = info["return_value"]
        try:
            _check_stream(check, where, stream)
        except BaseException:
            stream.close()
            raise


async def _apeer_hook(check: Callable[[str, str], None], where: str, event: str, info: dict[str, Any]) -> None:
    """:func:`_peer_hook` for httpx's async client (httpcore awaits its trace callbacks)."""
    if event == _CONNECTED:
        stream = info["return_value"]
        try:
            _check_stream(check, where, stream)
        except BaseException:
            await stream.aclose()
            raise


def _body_timeout(r: httpx.Response, retry: Retry) -> None:
    """The head came: the body's reads wait up to ``idle`` each, whatever is left of the call's
    deadline (which bounds the wait for the head only); httpcore reads this dict when the body
    starts; a transport that does not is left with ``first_byte``, a safe bound."""
    retry.head_came()
    timeouts = r.request.extensions.get("timeout")
    if isinstance(timeouts, dict) and retry.timeouts is not None:
        timeouts["read"] = retry.timeouts.idle


def _bounded_reads(r: httpx.Response) -> BoundedReads | None:
    """Reads of ``r``'s body that wait at most a given time: what a sync stream needs to read its
    tail (the closing chunk, a packet behind the terminal event) without blocking for ``idle``.

    httpcore fixes a body's read timeout when the body starts (``idle``), and sets it on the
    socket before every read, so setting the socket's own timeout would be undone. Instead the
    connection's network stream (the documented ``network_stream`` extension: for an HTTP/1.1
    response, the very object httpcore reads from) gets, once, a ``read`` that honours a
    deadline the reading thread set for that stream (:class:`_DeadlineReads`). The stream is
    shared: it goes back to the pool the moment its body ends, possibly while this thread is
    still inside the context, and another thread takes it; so nothing on it changes per call
    (a per-call ``read`` put there and removed again broke other threads' calls, and one left
    behind timed them out at once). None when there is no such stream (a mount answering
    in-process, HTTP/2): the caller then does not read the tail."""
    stream = r.extensions.get("network_stream")
    if (getattr(stream, "read", None) is None or not hasattr(stream, "__dict__")   # read cannot be shadowed
            or r.extensions.get("http_version", b"HTTP/1.1") != b"HTTP/1.1"):
        return None
    if not isinstance(vars(stream).get("read"), _DeadlineReads):
        with _INSTALL_LOCK:
            if not isinstance(vars(stream).get("read"), _DeadlineReads):
                stream.read = _DeadlineReads(stream)  # type: ignore[union-attr]

    @contextmanager
    def bounded(seconds: float) -> Iterator[None]:
        outer = getattr(_tail_reads, "deadline", None)
        _tail_reads.deadline = (stream, time.monotonic() + seconds)
        try:
            yield
        finally:
            _tail_reads.deadline = outer

    return bounded


#: The deadline of this thread's tail read, if it is reading one: (network stream, monotonic time).
_tail_reads = threading.local()
#: Held while a network stream's read is replaced (once per connection).
_INSTALL_LOCK = threading.Lock()


class _DeadlineReads:
    """A network stream's ``read`` for good: its class's read, bounded by the deadline the calling
    thread set for this very stream in :func:`_bounded_reads` (a ReadTimeout once it passed),
    unchanged for every other call. Weak, so the stream is not kept alive by its own attribute."""

    __slots__ = ("_stream", "_read")

    def __init__(self, stream: Any) -> None:
        self._stream = weakref.ref(stream)
        self._read: Callable[[Any, int, float | None], bytes] = type(stream).read

    def __call__(self, max_bytes: int, timeout: float | None = None) -> bytes:
        stream = self._stream()
        tail = getattr(_tail_reads, "deadline", None)
        if tail is not None and tail[0] is stream:
            left = tail[1] - time.monotonic()
            if left <= 0:
                import httpcore

                raise httpcore.ReadTimeout("the body's tail did not come in time")
            timeout = left if timeout is None else min(timeout, left)
        return self._read(stream, max_bytes, timeout)


def _drop_closed_loops(clients: LoopClients) -> None:
    """Let go of the clients of event loops that are closed (a finished ``asyncio.run()``): their
    connections can never be used or closed with their loop again (``aclose()`` needs the loop);
    the weak key alone would not free them, as each client refers to its loop. Their sockets are
    closed here, directly (:mod:`.dead_loops`): left to the collector, each stayed open until a
    collection found it, which then warned of an "unclosed transport"."""
    for loop in [loop for loop in list(clients.keys()) if loop.is_closed()]:
        client = clients.pop(loop, None)
        if client is not None:
            _close_dead_loop_sockets(client)


def _close_dead_loop_sockets(client: httpx.AsyncClient) -> None:
    """Close the socket of every pooled connection of ``client`` (its own transport's and its
    mounts', proxies included), whose loop is closed."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        for connection in list(getattr(getattr(transport, "_pool", None), "connections", ())):
            close_socket(_socket_transport(connection))


#: The attributes that lead from one of httpcore's pooled connections down to the asyncio
#: transport: a proxy's connection or a connection's HTTP/1.1 or HTTP/2 one (``_connection``),
#: its network stream, anyio's stream in that, and the stream under any TLS layered on it.
_LAYERS = ("_connection", "_network_stream", "_stream", "transport_stream")


def _socket_transport(connection: Any) -> asyncio.BaseTransport | None:
    """The asyncio transport under a pooled httpcore connection, or None (not connected yet, or
    a network stream of another kind: a mount's, trio's)."""
    layer = connection
    for _ in range(16):   # a handful of layers: a TLS tunnel through a TLS proxy has the most
        found = getattr(layer, "_transport", None)
        if isinstance(found, asyncio.BaseTransport):
            return found
        layer = next((getattr(layer, name) for name in _LAYERS if getattr(layer, name, None) is not None), None)
        if layer is None:
            return None
    return None


def _abandon_pools(client: httpx.Client) -> None:
    """A sync client inherited from the parent process (see :mod:`.fork_guard`): each pooled
    connection's socket is closed here, which only drops this process's descriptor (httpcore's
    close of a connection writes nothing; a proxy's pools included). Not ``client.close()``:
    that takes the pool's lock, which a thread of the parent may have held at the fork."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        for connection in getattr(getattr(transport, "_pool", None), "connections", ()):
            try:
                connection.close()
            except OSError:
                pass


def _abandon_loop_clients(clients: LoopClients) -> None:
    """Async clients inherited from the parent process: dropped (their sockets belong to the
    parent's loops, and close when collected); the child builds its own."""
    clients.clear()


def _lower_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers.raw}


def _iter_bytes(r: httpx.Response, retry: Retry) -> Iterator[bytes]:
    try:
        yield from r.iter_bytes()  # decoded (gzip, deflate), as every backend hands bodies back
    except Exception as exc:
        raise map_httpx_exception(exc, retry.url, retry.hint, mid_stream=True, timeouts=retry.timeouts) from exc


async def _aiter_bytes(r: httpx.Response, retry: Retry) -> AsyncIterator[bytes]:
    try:
        async for chunk in r.aiter_bytes():
            yield chunk
    except Exception as exc:
        raise map_httpx_exception(exc, retry.url, retry.hint, mid_stream=True, timeouts=retry.timeouts) from exc


def map_httpx_exception(exc: BaseException, url: str, hint: str | None = None, *, mid_stream: bool = False,
                        timeouts: Timeouts | None = None) -> TransportError:
    """httpx's exceptions in our error tree, naming the URL (never its query string, which
    may carry a key) and, for a refused local server, what to start."""
    import httpx

    if isinstance(exc, TransportError):
        return exc
    where = redact_url(url)
    t = timeouts or Timeouts()
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectTimeout(timeout_message("connect", where, t.connect), url=where)
    if isinstance(exc, httpx.TimeoutException):
        kind, seconds = ("idle", t.idle) if mid_stream else ("first_byte", t.first_byte)
        return ReadTimeout(timeout_message(kind, where, seconds), url=where)
    if isinstance(exc, httpx.ConnectError):
        return ConnectError(connect_message(where, exc, hint), url=where)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return RemoteProtocolError(dropped_message(where, type(exc).__name__, mid_stream=mid_stream), url=where)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return InvalidURL(invalid_url_message(where), url=where)
    if isinstance(exc, UnicodeError):   # the IDNA codec refused the host name (a label over 63 characters)
        return InvalidURL(invalid_host_message(where, exc), url=where)
    if isinstance(exc, httpx.LocalProtocolError):
        return LocalProtocolError(f"the request to {where} cannot be sent: {exc}", url=where)
    if isinstance(exc, httpx.HTTPError):
        return TransportError(f"HTTP error talking to {where}: {type(exc).__name__}: {exc}", url=where)
    raise exc
