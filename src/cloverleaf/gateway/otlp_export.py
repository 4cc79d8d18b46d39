"""Sending encoded spans to an OTLP/HTTP collector from one background thread.

The request path only appends a call's span bytes to a bounded queue (a lock and a list
extend). A daemon thread started with the first span sends them in batches: when
``BATCH_SPANS`` are waiting, or ``DELAY_SECONDS`` after the first one came. A full queue
drops the new spans (and says so in the log, at most once a minute) rather than grow
without bound or slow the calls; a dead or slow collector costs the same, never a call.
Collectors that answer 429, 502, 503 or 504 get the batch again, backing off (or waiting
as long as their ``Retry-After`` asks, when that is longer), until ``timeout`` has passed: a
collector asking for a wait that ends past it gets no retry, the batch is dropped at once;
other errors drop it. Every span dropped is counted, by why (``dropped_by_reason``: the
server's ``/metrics``), since a log line once a minute cannot say how many were lost. A process that exits without shutting the
exporter down (a short script) sends what is queued first, for at most ``timeout`` (an
``atexit`` hook, as the store's writer has). Nothing logged names the headers (they
usually carry the collector's API key) or the URL's query.

A proxy, when the settings name one (``telemetry.proxy_for``: ``HTTPS_PROXY`` and ``NO_PROXY``
by default, as the OpenTelemetry SDK's exporter through ``requests``), is an http:// proxy: an
https collector is reached through a ``CONNECT`` tunnel (TLS end to end, the proxy sees only the
host name), an http one by sending the proxy the full URL. The proxy's credentials go in
``Proxy-Authorization`` and, like the headers, never into the log. A collector behind a proxy is
not local for the privacy policy (``Gateway._admit``): the proxy decides where the spans go.
"""

from __future__ import annotations

import atexit
import email.utils
import gzip as gzip_module
import http.client
import logging
import os
import ssl
import threading
import time
import weakref
from base64 import b64encode
from collections.abc import Callable, Mapping
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

log = logging.getLogger("cloverleaf.gateway.telemetry")

BATCH_SPANS = 512
MAX_QUEUED_SPANS = 8192
DELAY_SECONDS = 1.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
WARN_EVERY_SECONDS = 60.0


class Proxy(NamedTuple):
    """An http:// proxy: where to connect and the ``Proxy-Authorization`` header, if any."""

    host: str
    port: int
    headers: dict[str, str]

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """``http://user:password@proxy:3128`` → host, port and the Basic credentials (percent-decoded)."""
        parts = urlsplit(url)
        headers = {}
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Proxy-Authorization"] = "Basic " + b64encode(pair.encode()).decode("ascii")
        return cls(parts.hostname or "localhost", parts.port or 80, headers)


class SpanExporter:
    def __init__(self, endpoint: str, headers: Mapping[str, str], timeout: float,
                 encode: Callable[[list[bytes]], bytes], *, gzip: bool = False, cafile: str | None = None,
                 proxy: str | None = None) -> None:
        """``encode`` turns a batch of spans into the request body (``otlp_wire.export_request``);
        ``gzip``: compress it; ``cafile``: the CA bundle an https collector is checked against
        (default: certifi's, as httpx does); ``proxy``: an http:// proxy URL to go through."""
        url = urlsplit(endpoint)
        self._https = url.scheme == "https"
        self._host = url.hostname or "localhost"
        self._port = url.port or (443 if self._https else 80)
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._where = f"{url.scheme}://{self._host}:{self._port}{url.path}"   # for the log: no query
        self._headers = {"content-type": "application/x-protobuf", **headers}
        self._proxy = Proxy.parse(proxy) if proxy else None
        if self._proxy is not None:
            self._where += f" through the proxy at {self._proxy.host}:{self._proxy.port}"   # no credentials
            if not self._https:   # a plain-http request goes to the proxy in full, with its credentials
                netloc = f"[{self._host}]" if ":" in self._host else self._host   # an IPv6 address
                self._path = f"http://{netloc}:{self._port}{self._path}"
                self._headers.update(self._proxy.headers)
        self._gzip = gzip
        if gzip:
            self._headers["content-encoding"] = "gzip"
        self._cafile = cafile
        self._timeout = timeout
        self._encode = encode
        self._cond = threading.Condition()
        self._queue: list[bytes] = []
        self._in_flight = 0
        self._first_at: float | None = None
        self._flush_asked = False
        self._closed = False
        self._thread: threading.Thread | None = None
        #: registered with ``atexit`` when the thread starts (``_flush_at_exit``); None after shutdown
        self._exit_flush: Callable[[], None] | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._warned_at = -WARN_EVERY_SECONDS
        self.dropped = 0          # spans, refused by a full queue
        self.lost = 0             # spans in batches the collector never took (refused, busy, unreachable)
        self.batches_sent = 0     # exports the collector accepted
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(me))

    def _forget_parent_process(self) -> None:
        """In a forked child: the parent's thread, lock, connection and queued spans are the parent's."""
        self._cond = threading.Condition()
        self._queue = []
        self._in_flight = 0
        self._first_at = None
        self._thread = None
        self._conn = None

    # -- the caller's side ---------------------------------------------------------------
    def add(self, spans: list[bytes]) -> None:
        """Queue one call's spans (never blocks on the network)."""
        with self._cond:
            if self._closed:
                return
            if len(self._queue) + len(spans) > MAX_QUEUED_SPANS:
                self.dropped += len(spans)
                self._warn(f"the span queue is full ({MAX_QUEUED_SPANS}); {self.dropped} spans dropped so far")
                return
            first = not self._queue
            if first:
                self._first_at = time.monotonic()
            self._queue.extend(spans)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cloverleaf-otlp-export", daemon=True)
                self._thread.start()
                if self._exit_flush is None:
                    self._exit_flush = _flush_at_exit(weakref.ref(self))
                    atexit.register(self._exit_flush)
            if first or len(self._queue) >= BATCH_SPANS:   # the thread starts the delay, or sends now
                self._cond.notify()

    def force_flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued now; True once it has been sent (or given up on)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_asked = True
            self._cond.notify_all()
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(left)
            return True

    def shutdown(self, timeout: float = 5.0) -> None:
        if self._exit_flush is not None:
            atexit.unregister(self._exit_flush)
            self._exit_flush = None
        self.force_flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._conn is not None:
            self._conn.close()

    # -- the export thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._queue and (self._flush_asked or len(self._queue) >= BATCH_SPANS):
                        break
                    if self._queue:
                        left = (self._first_at or 0.0) + DELAY_SECONDS - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    else:
                        self._flush_asked = False
                        self._cond.notify_all()       # a force_flush waiting on an empty queue
                        self._cond.wait()
                if self._closed and not self._queue:
                    return
                batch, self._queue = self._queue[:BATCH_SPANS], self._queue[BATCH_SPANS:]
                self._first_at = time.monotonic() if self._queue else None
                self._in_flight = len(batch)
            delivered = False
            try:
                body = self._encode(batch)
                delivered = self._send(gzip_module.compress(body, 6) if self._gzip else body)
            except Exception as exc:  # noqa: BLE001 - telemetry never fails anything else
                self._warn(f"could not export {len(batch)} spans to {self._where}: {type(exc).__name__}")
            finally:
                with self._cond:
                    if not delivered:
                        self.lost += len(batch)
                    self._in_flight = 0
                    self._cond.notify_all()

    def dropped_by_reason(self) -> dict[str, int]:
        """Spans dropped so far: ``queue_full`` (refused by a full queue) and ``export_failed``
        (in a batch the collector refused, stayed busy for, or could not be reached for)."""
        return {"queue_full": self.dropped, "export_failed": self.lost}

    def _send(self, body: bytes) -> bool:
        """POST one batch; retry a busy collector until ``timeout`` has passed, waiting the
        backoff or its ``Retry-After``, whichever is longer. True once the collector took it."""
        deadline = time.monotonic() + self._timeout
        backoff = 0.25
        while True:
            status, retry_after = self._post(body)
            if 200 <= status < 300:
                self.batches_sent += 1
                return True
            wait = max(backoff, retry_after or 0.0)
            if status not in RETRY_STATUSES or time.monotonic() + wait > deadline:
                asked = f" and asked for {retry_after:g} s more" if retry_after and wait == retry_after else ""
                self._warn(f"the collector at {self._where} answered {status}{asked}; a batch of spans was dropped")
                return False
            time.sleep(wait)
            backoff *= 2

    def _post(self, body: bytes) -> tuple[int, float | None]:
        """The collector's status for one POST, and its ``Retry-After`` in seconds (None: none)."""
        for reused in (True, False):
            conn = self._conn
            if conn is None:
                reused = False
                conn = self._conn = self._connect()
            try:
                conn.request("POST", self._path, body, self._headers)
                answer = conn.getresponse()
                answer.read()
                if answer.will_close:
                    conn.close()
                    self._conn = None
                return answer.status, retry_after_seconds(answer.getheader("retry-after"))
            except (OSError, http.client.HTTPException):
                conn.close()
                self._conn = None
                if not reused:   # a fresh connection failed: the collector is down
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        proxy = self._proxy
        host, port = (self._host, self._port) if proxy is None else (proxy.host, proxy.port)
        if not self._https:
            return http.client.HTTPConnection(host, port, timeout=self._timeout)
        cafile = self._cafile
        if cafile is None:
            import certifi

            cafile = certifi.where()
        conn = http.client.HTTPSConnection(host, port, timeout=self._timeout,
                                           context=ssl.create_default_context(cafile=cafile))
        if proxy is not None:   # CONNECT first; TLS (checked against the collector's name) inside the tunnel
            conn.set_tunnel(self._host, self._port, headers=proxy.headers)
        return conn

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning("OpenTelemetry: %s", message)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header's wait: delay-seconds, or an HTTP date (the wait until then);
    None when there is none or it cannot be read."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _flush_at_exit(ref: weakref.ref[SpanExporter]) -> Callable[[], None]:
    """What ``atexit`` runs for an exporter that was never shut down (a script's module-level
    ``cloverleaf.chat``, a Client never closed): send what is queued, for at most the export
    timeout, before the interpreter stops the daemon thread with the spans still waiting out
    ``DELAY_SECONDS``. A weak reference: the hook never keeps an exporter alive."""
    def flush() -> None:
        exporter = ref()
        if exporter is not None and not exporter._closed:
            exporter.force_flush(exporter._timeout)
    return flush


def _after_fork(ref: weakref.ref[SpanExporter]) -> None:
    exporter = ref()
    if exporter is not None:
        exporter._forget_parent_process()
