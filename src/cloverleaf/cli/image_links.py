"""``cloverleaf image`` fetching an image a provider answered as a link, not as data.

The link is the provider's, and what it points at is not checked by anyone else, so each hop is
held to rules of its own. Redirects were never followed (a CDN's signed link that redirects
gave "no image"), any body was read whole into memory and written out (a 60 MB answer became a
60 MB file), and the local-only rule held for the first address only. Now:

- at most :data:`MAX_REDIRECTS` redirects, each hop checked as the link itself is;
- ``https``, or plain ``http`` only to a host on this machine or its network (a local server);
- a host outside never steers this machine at its own network: neither a redirect from a host
  outside to one inside, nor the link itself when the provider that answered it is outside (an
  image link to ``http://10.0.0.1/...`` from a hosted API was fetched, the one rule a redirect
  was held to skipped for the first hop); a local server's link to itself is fetched;
- a local-only call fetches from local hosts only, every hop;
- those rules hold for the address each connection reaches, not only for the name's answer
  when it was checked: the HTTP client looks the name up again when it connects, and a name
  whose answer changes in between (DNS rebinding: public at the check, ``127.0.0.1`` at the
  connection) steered the download into this machine's network. Each connection is checked once
  made, before a byte is written (the transport's peer check, as for local-only calls): a hop
  judged outside must reach an address outside, a hop that must be local (a local-only call,
  plain http) one inside. Such hops go straight to the host, as local-only calls do;
- behind an HTTP proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, unless ``NO_PROXY`` names
  the host) a hop judged outside goes through the proxy, which looks the name up and connects
  itself: this machine never connects to the host, so the rule for links into its network is
  held by the name check alone (where the proxy may connect is the proxy's rule);
- at most :data:`MAX_IMAGE_BYTES`: a ``Content-Length`` over it is refused before the body, a
  body that runs past it is cut off;
- the answer must be an image (``image/*``, or ``application/octet-stream`` whose bytes are one);
- no credential is sent: the request carries no provider key or header.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

#: Redirects followed from the provider's link before giving up.
MAX_REDIRECTS = 5
#: The largest image written from a link (a 4096x4096 PNG is well under it).
MAX_IMAGE_BYTES = 64 * 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: The first bytes of the image formats providers answer (PNG, JPEG, GIF, WebP's RIFF).
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"RIFF")


class NotDownloaded(Exception):
    """Why an image the provider answered as a URL could not be fetched (the URL included)."""


def download(client: Any, url: str, privacy: dict[str, Any], answered_by: str | None) -> tuple[bytes, str]:
    """The image at ``url`` and its media type ("" when the server named none), fetched over the
    client's own transport (its timeouts and retries) under the rules of the module docstring.
    ``answered_by``: the target (model id) whose answer held the link, whose endpoint says whether
    the link may point into this machine's network."""
    from .._errors import CloverleafError

    what = f"fetch it yourself from {url}" if url else "ask again, or try another model"
    engine = client.engine
    local_only = engine.privacy.config.decide(**privacy).local_only
    current, came_from_local = url, provider_is_local(engine, answered_by)
    try:
        for hop in range(MAX_REDIRECTS + 1):
            local = _check_hop(engine, current, local_only, came_from_local, what, redirected=hop > 0)
            check = _connection_check(engine, current, local_only, came_from_local, what)
            status, headers, body = _get(engine, current, what, check)
            location = headers.get("location")
            if status in _REDIRECTS and location:
                current, came_from_local = urljoin(current, location), local
                continue
            return _image(status, headers, body, what)
    except CloverleafError as exc:
        raise NotDownloaded(f"the provider answered a link, and downloading it failed ({exc}); {what}") from None
    raise NotDownloaded(f"the provider answered a link that redirected more than {MAX_REDIRECTS} times; {what}")


def provider_is_local(engine: Any, target: str | None) -> bool:
    """Whether the endpoint of ``target`` (the model id an answer names) is on this machine or its
    network; not when it cannot be told (a link from it then stays outside: fail closed)."""
    from .._errors import CloverleafError

    if not target:
        return False
    try:
        base_url = engine.resolve(target).cfg.base_url or ""
    except (CloverleafError, ValueError):
        return False
    return bool(base_url) and bool(engine.privacy.sink(base_url).local)


def _check_hop(engine: Any, url: str, local_only: bool, came_from_local: bool, what: str, *,
               redirected: bool) -> bool:
    """Whether ``url`` is local; NotDownloaded for a hop the rules refuse."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise NotDownloaded(f"the provider answered neither image data nor a web link ({scheme or 'no'} "
                            f"scheme); {what}")
    where = engine.privacy.sink(url)
    if local_only and not where.local:
        raise NotDownloaded(f"the provider answered a link to a host that is not local ({where.reason}), and "
                            f"this call is local-only; {what}")
    if where.local and not came_from_local:
        how = ("redirected from a host outside to" if redirected else
               "is from a provider outside this machine's network, and points at")
        raise NotDownloaded(f"the provider's link {how} a host on this machine or its network "
                            f"({urlsplit(url).netloc}); not followed; {what}")
    if scheme == "http" and not where.local:
        raise NotDownloaded(f"the provider answered a plain http link to a host that is not local ({where.reason});"
                            f" only https is fetched from outside; {what}")
    return bool(where.local)


def _connection_check(engine: Any, url: str, local_only: bool, came_from_local: bool,
                      what: str) -> Callable[[str, str], None] | None:
    """The check of the address a hop's connection reaches (the transport runs it once
    connected, before writing), for a hop :func:`_check_hop` let through; None for a hop that
    may reach any address (a local server's https link) or one sent through a proxy.

    The rules cannot ask opposite things of one origin (the transport's checked connections are
    pooled by origin): a hop must be local only in a local-only call, where no hop may be judged
    outside, or over plain http, which only a local server's link may use."""
    if local_only or urlsplit(url).scheme.lower() == "http":   # judged local, so must connect there
        return engine.privacy.check_peer if local_only else functools.partial(_reached_local, engine, what)
    if came_from_local or engine.transport.proxied(url):
        return None
    return functools.partial(_reached_outside, engine, what)


def _reached_outside(engine: Any, what: str, address: str, where: str) -> None:
    """A hop judged outside reached ``address``: refused before a byte is written unless it is
    outside too (an address the transport cannot tell is refused: fail closed). ``where``: the
    hop's URL as the transport redacts it (no credentials, no query)."""
    found = engine.privacy.reached(address)
    if found.local or not address:
        reached = f"{address} ({found.reason})" if address else "an address it could not tell"
        raise NotDownloaded(f"the provider's link {where} was checked as outside this machine's network, and "
                            f"the connection reached {reached}, on it: the name's answer changed in between (DNS "
                            f"rebinding?); nothing was sent; {what}")


def _reached_local(engine: Any, what: str, address: str, where: str) -> None:
    """A plain http hop, allowed only to a local host, reached ``address``: refused before a
    byte is written unless it is local too (plain http never goes outside)."""
    found = engine.privacy.reached(address)
    if not found.local:
        reached = f"{address} ({found.reason})" if address else "an address it could not tell"
        raise NotDownloaded(f"the provider's plain http link {where} was checked as on this machine's network, and "
                            f"the connection reached {reached}, not on it: the name's answer changed in between; "
                            f"only https is fetched from outside; nothing was sent; {what}")


def _get(engine: Any, url: str, what: str,
         check: Callable[[str, str], None] | None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET of ``url``, the body read no further than the cap, each
    new connection's address held to ``check`` (None: not checked)."""
    from .._http import HttpRequest

    with engine.transport.stream(HttpRequest("GET", url, stream=True, peer_check=check),
                                 max_retries=engine.settings.max_retries) as answer:
        declared = (answer.headers.get("content-length") or "").strip()
        if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
            raise NotDownloaded(f"the provider's link answered {int(declared):,} bytes, over the "
                                f"{MAX_IMAGE_BYTES:,}-byte limit for an image; {what}")
        body = bytearray()
        for chunk in answer.chunks():
            body += chunk
            if len(body) > MAX_IMAGE_BYTES:
                raise NotDownloaded(f"the provider's link answered more than {MAX_IMAGE_BYTES:,} bytes, the limit "
                                    f"for an image; {what}")
        return answer.status, answer.headers, bytes(body)


def _image(status: int, headers: dict[str, str], body: bytes, what: str) -> tuple[bytes, str]:
    from .._http import is_success

    kind = (headers.get("content-type") or "").split(";")[0].strip().lower()
    looks = body.startswith(_SIGNATURES)
    image = kind.startswith("image/") or (kind in ("", "application/octet-stream") and looks)
    if not is_success(status) or not body or not image:
        got = f"HTTP {status}, {kind or 'no content type'}, {len(body):,} bytes"
        raise NotDownloaded(f"the provider answered a link, and it gave no image ({got}); {what}")
    return body, kind if kind.startswith("image/") else ""
