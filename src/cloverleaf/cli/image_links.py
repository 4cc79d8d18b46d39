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
- at most :data:`MAX_IMAGE_BYTES`: a ``Content-Length`` over it is refused before the body, a
  body that runs past it is cut off;
- the answer must be an image (``image/*``, or ``application/octet-stream`` whose bytes are one);
- no credential is sent: the request carries no provider key or header.
"""

from __future__ import annotations

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
            status, headers, body = _get(engine, current, what)
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


def _get(engine: Any, url: str, what: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a GET of ``url``, the body read no further than the cap."""
    from .._http import HttpRequest

    with engine.transport.stream(HttpRequest("GET", url, stream=True),
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
