"""Which backend sends a request: a mount for its URL, else the client ``http_client`` names.

:class:`Transport` is the one object the engine talks to. For each URL it picks, once (the
choice is cached per URL, so the hot path pays one dict lookup):

1. a **mount** whose pattern matches the URL, as httpx ``mounts`` work: an httpx transport
   (or a factory for one, built on first use) that answers in-process. The engine mounts the
   fake provider's upstream on its host this way, and tests mount an ``httpx.MockTransport``
   as a provider-side mock; the transport itself knows no provider;
2. for blocking calls, the pooled httpx backend;
3. for asyncio calls, the backend :func:`resolve_http_client` chooses (what ``cloverleaf
   doctor`` reports): the lean HTTP/1.1 client (:mod:`.h1`), aiohttp, or httpx.

Patterns, most specific first: ``"http://host:port"``, ``"http://host"``, ``"all://host"``,
``"http://"``, ``"all://"``.
"""

from __future__ import annotations

import threading
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

from .._errors import ConfigError
from .._http import HttpRequest, HttpResponse
from . import at_exit
from .base import HTTP_CLIENTS, AsyncBackend, AsyncStreamHandle, SyncStreamHandle, Timeouts
from .httpx import HttpxBackend
from .retry import RetryPolicy

#: A mount: an httpx transport (sync, async or both), or a zero-argument factory for one.
Mountable = Any


def check_http_client(setting: str) -> None:
    """``http_client`` names one of :data:`HTTP_CLIENTS`, else a ConfigError in the words every
    client (and ``cloverleaf serve``) refuses it with."""
    if setting not in HTTP_CLIENTS:
        raise ConfigError(f"http_client must be one of {', '.join(HTTP_CLIENTS)}, not {setting!r}")


def resolve_http_client(setting: str) -> tuple[str, str]:
    """Which async client ``http_client = setting`` means here, and why (``cloverleaf doctor``
    prints both): ``auto`` takes the lean h1 client when httptools is installed and no proxy
    is set (httpx honours proxies; the lean clients do not), else aiohttp, else httpx.

    Why by measurement (bench/README.md): httpx's async pool costs ~10x the CPU per request
    under concurrency (it walks every pooled connection per request), aiohttp's request
    machinery about a quarter of the gateway's CPU; the lean HTTP/1.1 client costs least.

    A setting no client takes is a ConfigError (:func:`check_http_client`): ``"h2"`` was
    reported by the doctor as chosen, and then refused by every client and the server."""
    check_http_client(setting)
    if setting != "auto":
        return setting, "set by http_client"
    import importlib.util
    import urllib.request

    from .h1 import available

    # getproxies() also reports NO_PROXY (as "no"), which names no proxy to honour
    proxies = sorted(scheme for scheme in urllib.request.getproxies() if scheme != "no")
    if proxies:
        return "httpx", f"a proxy is set for {', '.join(proxies)}, which httpx honours"
    if available():
        return "h1", "httptools is installed and no proxy is set"
    if importlib.util.find_spec("aiohttp") is not None:
        return "aiohttp", "httptools is not installed"
    return "httpx", "neither httptools nor aiohttp is installed (pip install 'cloverleaf[server]')"


class _Mount:
    __slots__ = ("scheme", "host", "port", "target", "backend")

    def __init__(self, pattern: str, target: Mountable) -> None:
        scheme, sep, rest = pattern.partition("://")
        if not sep or not scheme:
            raise ConfigError(f"a mount pattern looks like 'http://host' or 'all://', not {pattern!r}")
        self.scheme = scheme.lower()
        host, _, port = rest.rstrip("/").partition(":")
        self.host = host.lower() or None
        self.port = int(port) if port else None
        self.target = target
        self.backend: HttpxBackend | None = None

    def specificity(self) -> tuple[bool, bool, bool]:
        return self.port is not None, self.host is not None, self.scheme != "all"

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        return ((self.scheme in ("all", scheme)) and (self.host is None or self.host == host)
                and (self.port is None or self.port == port))

    def instance(self) -> Any:
        target = self.target
        if not (hasattr(target, "handle_request") or hasattr(target, "handle_async_request")) and callable(target):
            self.target = target = target()  # a factory: built on first use
        return target


class Transport:
    """Sends every request of one Client: mounts first, then httpx (sync) or the chosen
    async backend. Thread-safe for sync use."""

    def __init__(self, *, timeouts: Timeouts | None = None, max_retries: int = 2, max_connections: int = 1000,
                 retry: RetryPolicy | None = None, http_client: str = "auto",
                 mounts: dict[str, Mountable] | None = None) -> None:
        check_http_client(http_client)
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.max_connections = max_connections
        self.http_client = http_client
        self._mounts: list[_Mount] = []
        self._routes: dict[str, HttpxBackend | None] = {}
        self._lock = threading.Lock()
        self._httpx = HttpxBackend(timeouts=self.timeouts, retry=self.retry, max_connections=max_connections)
        #: The async backend for network calls, chosen on first use (see resolve_http_client).
        self._async: AsyncBackend | None = None
        #: Local-only calls' httpx backend, when their requests cannot go through h1 (built on first use).
        self._checked: HttpxBackend | None = None
        for pattern, target in (mounts or {}).items():
            self.mount(pattern, target)
        at_exit.register(self)   # one never closed has its sockets closed at exit, not warned about

    # -- mounts -----------------------------------------------------------------------------
    def mount(self, pattern: str, target: Mountable) -> None:
        """Send requests whose URL matches ``pattern`` to ``target`` (an httpx transport, or a
        zero-argument factory for one) instead of the network."""
        self._mounts = [m for m in self._mounts if _pattern(m) != pattern.rstrip("/").lower()]
        self._mounts.append(_Mount(pattern, target))
        self._mounts.sort(key=_Mount.specificity, reverse=True)
        self._routes.clear()

    def mounted(self, pattern: str) -> Any:
        """What is mounted at ``pattern`` (built now if it was a factory); KeyError if nothing."""
        with self._lock:
            for m in self._mounts:
                if _pattern(m) == pattern.rstrip("/").lower():
                    return m.instance()
        raise KeyError(pattern)

    def _mount_for(self, url: str) -> HttpxBackend | None:
        """The mount's backend for ``url``, or None for the network; cached per URL."""
        try:
            return self._routes[url]
        except KeyError:
            pass
        with self._lock:  # the slow path, once per URL: two threads must not build two backends
            return self._route(url)

    def _route(self, url: str) -> HttpxBackend | None:
        found: HttpxBackend | None = None
        if self._mounts:
            parts = urlsplit(url)
            scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
            try:
                port = parts.port
            except ValueError:
                port = None
            for m in self._mounts:
                if m.matches(scheme, host, port):
                    if m.backend is None:
                        m.backend = HttpxBackend(timeouts=self.timeouts, retry=self.retry, transport=m.instance())
                    found = m.backend
                    break
        if len(self._routes) >= 1024:
            self._routes.clear()
        self._routes[url] = found
        return found

    # -- backends ---------------------------------------------------------------------------
    def _sync_backend(self, req: HttpRequest) -> HttpxBackend:
        mounted = self._mount_for(req.url)
        if mounted is not None:
            return mounted
        return self._peer_checked() if req.peer_check is not None else self._httpx

    def _async_backend(self, req: HttpRequest) -> AsyncBackend:
        mounted = self._mount_for(req.url)
        if mounted is not None:
            return mounted
        backend = self.async_backend
        if req.peer_check is not None and not getattr(backend, "checks_peers", False):
            return self._peer_checked()
        return backend

    def _peer_checked(self) -> HttpxBackend:
        """Where a local-only request goes when the usual backend cannot check the address each
        connection reached (httpx's sync and proxied pools, aiohttp): a pool of its own that
        checks every new connection and takes no proxy (see :class:`HttpxBackend`); h1 checks
        every connection itself."""
        with self._lock:
            if self._checked is None:
                self._checked = HttpxBackend(timeouts=self.timeouts, retry=self.retry,
                                             max_connections=self.max_connections, peer_checked=True)
            return self._checked

    def _choose_async(self) -> AsyncBackend:
        choice, _ = resolve_http_client(self.http_client)
        kw: dict[str, Any] = {"timeouts": self.timeouts, "max_connections": self.max_connections, "retry": self.retry}
        if choice == "h1":
            from .h1.pool import H1Transport

            return H1Transport(**kw)
        if choice == "aiohttp":
            from .aiohttp import AiohttpTransport

            return AiohttpTransport(**kw)
        return self._httpx

    @property
    def async_backend(self) -> AsyncBackend:
        """The backend network calls from asyncio go through (chosen now if not yet: once, however
        many threads' loops ask at once, or each would hold pools of its own)."""
        backend = self._async
        if backend is None:
            with self._lock:
                if self._async is None:
                    self._async = self._choose_async()
                backend = self._async
        return backend

    def proxied(self, url: str) -> bool:
        """Whether a blocking request to ``url`` without a peer check goes through an HTTP proxy
        (a mounted URL never does: it is answered in process). A request with a peer check never
        does: its connection is checked, and a proxy's address says nothing of where it goes."""
        return self._mount_for(url) is None and self._httpx.proxied(url)

    # -- the contract -----------------------------------------------------------------------
    def send(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        return self._sync_backend(req).send(req, max_retries=max_retries, hint=hint)

    def stream(self, req: HttpRequest, *, max_retries: int | None = None,
               hint: str | None = None) -> AbstractContextManager[SyncStreamHandle]:
        """Open a streaming response. Retries happen only before any byte is handed out.
        An error status is returned with its full body read (``chunks()`` yields it once)."""
        return self._sync_backend(req).stream(req, max_retries=max_retries, hint=hint)

    async def asend(self, req: HttpRequest, *, max_retries: int | None = None, hint: str | None = None) -> HttpResponse:
        return await self._async_backend(req).asend(req, max_retries=max_retries, hint=hint)

    def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                hint: str | None = None) -> AbstractAsyncContextManager[AsyncStreamHandle]:
        return self._async_backend(req).astream(req, max_retries=max_retries, hint=hint)

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close every pool, the async backend's too: its pools of closed loops have their
        sockets closed now (Provider.close() and a pruned default client rely on it)."""
        if self._async is not None and self._async is not self._httpx:
            self._async.close()
        self._httpx.close()
        if self._checked is not None:
            self._checked.close()
        for m in self._mounts:
            if m.backend is not None:
                m.backend.close()

    async def aclose(self) -> None:
        if self._async is not None and self._async is not self._httpx:
            await self._async.aclose()
        await self._httpx.aclose()
        if self._checked is not None:
            await self._checked.aclose()
        for m in self._mounts:
            if m.backend is not None:
                await m.backend.aclose()


def _pattern(m: _Mount) -> str:
    host = (m.host or "") + (f":{m.port}" if m.port is not None else "")
    return f"{m.scheme}://{host}"
