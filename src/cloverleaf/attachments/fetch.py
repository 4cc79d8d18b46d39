"""Download an attachment through the SSRF guard, within a size cap and a deadline.

Every hop goes: check the URL and pin its address (:mod:`.ssrf`), connect to that address
(the URL handed to httpx holds the IP; ``Host`` and the TLS server name hold the original
host, so certificates are verified for the name), and read the response as a stream.
Redirects are followed by hand so each ``Location`` passes the same check; a
``Content-Length`` over the cap is refused before the body, and a body that runs past the cap
is cut off. One deadline covers the whole download, so a server that drips a byte a second,
in the headers or the body, is cut off when it expires.

There is one implementation, async. The sync entry point runs it on a private event loop
(in a worker thread when the calling thread already runs one), because only a cancellable
read gives an exact deadline: a blocking socket read can only be bounded per read, and a
drip-feeding server never lets a per-read timeout fire.

httpx is imported on the first download, not with the module: the gateway server imports the
attachment code on start, and most servers never fetch a URL (httpx and what its package
``__init__`` pulls in cost several MiB of resident memory in every worker).
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .._errors import AttachmentError
from .policy import AttachmentPolicy
from .ssrf import Pinned, apin, redact_url

if TYPE_CHECKING:
    import httpx

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(slots=True)
class Download:
    data: bytes
    #: The final URL (after redirects), redacted of credentials and query.
    url: str
    content_type: str | None
    #: The last path segment of the final URL, when it has one.
    filename: str | None


def _ssl_context(policy: AttachmentPolicy) -> ssl.SSLContext:
    if isinstance(policy.verify, ssl.SSLContext):
        return policy.verify
    if policy.verify is False:
        raise AttachmentError("TLS verification cannot be switched off for attachment downloads; "
                              "pass an ssl.SSLContext trusting your CA as AttachmentPolicy.verify", rule="tls")
    return _default_ssl_context()


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    """Loading the CA bundle costs tens of milliseconds: do it once per process, not per hop."""
    import httpx

    return httpx.create_ssl_context()


def _timeout(policy: AttachmentPolicy) -> httpx.Timeout:
    import httpx

    return httpx.Timeout(connect=policy.connect_timeout, read=policy.read_timeout,
                         write=policy.connect_timeout, pool=policy.connect_timeout)


class ByteBudget:
    """The bytes all of one request's attachments may still add up to
    (``AttachmentPolicy.max_request_bytes``), shared by downloads running at once: each
    chunk is counted as it arrives, so the request's total is never exceeded by more than
    one chunk per download in flight."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int, where: str) -> None:
        self.used += size
        if self.used > self.limit:
            raise AttachmentError(
                f"the request's attachments add up to more than {self.limit} bytes ({where} went past it); "
                "send fewer or smaller files ([attachments] max_request_bytes)", rule="request-too-large",
                detail=f"{self.limit} bytes")


async def adownload(url: str, policy: AttachmentPolicy, budget: ByteBudget | None = None) -> Download:
    """Fetch ``url`` under ``policy``; raises :class:`AttachmentError` on every refusal.
    ``budget``: the request's shared byte budget, charged as the body arrives."""
    import anyio

    try:
        with anyio.fail_after(policy.read_timeout):
            return await _follow(url, policy, _ssl_context(policy), budget)
    except TimeoutError:
        raise AttachmentError(
            f"downloading {redact_url(url)} took longer than the {policy.read_timeout:g}s deadline "
            "(AttachmentPolicy.read_timeout)", rule="timeout", detail=f"{policy.read_timeout:g}s") from None


def download(url: str, policy: AttachmentPolicy) -> Download:
    """Blocking :func:`adownload` (see the module docstring for why it runs an event loop)."""
    import asyncio

    import anyio

    async def fetch() -> Download:
        return await adownload(url, policy)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(fetch)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cloverleaf-attachment") as pool:
        return pool.submit(anyio.run, fetch).result()


async def _follow(url: str, policy: AttachmentPolicy, context: ssl.SSLContext,
                  budget: ByteBudget | None) -> Download:
    import httpx

    current = url
    for _hop in range(policy.max_redirects + 1):
        pinned = await apin(current, policy)
        # A fresh client per hop: a pooled TLS connection verified for one host name must
        # never carry a request for another name that happens to share its address.
        async with httpx.AsyncClient(verify=context, timeout=_timeout(policy), trust_env=False,
                                     follow_redirects=False) as client:
            request = client.build_request("GET", pinned.connect_url, headers=pinned.headers,
                                           extensions=pinned.extensions)
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise _transport_error(pinned, exc) from None
            try:
                if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                    current = pinned.target.join(response.headers["location"])
                    continue
                return await _read_body(pinned, response, policy, budget)
            finally:
                await response.aclose()
    raise AttachmentError(
        f"{redact_url(url)} redirected more than {policy.max_redirects} times (AttachmentPolicy.max_redirects)",
        rule="too-many-redirects", detail=str(policy.max_redirects))


async def _read_body(pinned: Pinned, response: httpx.Response, policy: AttachmentPolicy,
                     budget: ByteBudget | None) -> Download:
    import httpx

    where = pinned.target.describe()
    if not 200 <= response.status_code < 300:
        raise AttachmentError(f"{where} answered HTTP {response.status_code}; expected the file",
                              rule="http-status", detail=str(response.status_code))
    limit = policy.max_bytes
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(where, limit, f"Content-Length says {int(declared)} bytes")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # We asked for identity; a compressed body would be inflated past the cap before it
        # could be counted (a decompression bomb), so it is refused rather than decoded.
        raise AttachmentError(f"{where} was sent with Content-Encoding {encoding!r} although identity was asked "
                              "for; refusing to inflate it", rule="content-encoding", detail=encoding)
    body = bytearray()
    try:
        async for chunk in response.aiter_raw(_CHUNK):
            body += chunk
            if len(body) > limit:
                raise _too_large(where, limit, "the body ran past it")
            if budget is not None:
                budget.take(len(chunk), where)
    except httpx.HTTPError as exc:
        raise _transport_error(pinned, exc) from None
    content_type = response.headers.get("content-type")
    return Download(bytes(body), where, content_type, _filename(pinned.target.target))


def _too_large(where: str, limit: int, why: str) -> AttachmentError:
    return AttachmentError(f"{where} is larger than the {limit}-byte limit ({why}); raise AttachmentPolicy.max_bytes "
                           "to allow bigger attachments", rule="too-large", detail=f"{limit} bytes")


def _transport_error(pinned: Pinned, exc: httpx.HTTPError) -> AttachmentError:
    import httpx

    where = f"{pinned.target.describe()} (connecting to {pinned.ip})"
    if isinstance(exc, httpx.TimeoutException):
        return AttachmentError(f"timed out fetching {where}: {type(exc).__name__}", rule="timeout", detail=pinned.ip)
    if _caused_by_tls(exc):
        return AttachmentError(f"TLS verification failed for {where}: {exc}", rule="tls", detail=pinned.target.host)
    return AttachmentError(f"could not fetch {where}: {type(exc).__name__}: {exc}", rule="connect", detail=pinned.ip)


def _caused_by_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _filename(target: str) -> str | None:
    name = unquote(urlsplit(target).path.rsplit("/", 1)[-1])
    return name or None
