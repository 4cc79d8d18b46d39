"""The request side of HTTP/1.1: where a URL goes, and the head written for it.

:class:`Origin` prepares once per URL what every request to it repeats (pool key, request
target, Host header, Basic auth from the URL); :func:`request_head` writes a request head
from it. Both are pure: no socket, no loop.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, unquote, urlsplit

from ..._errors import InvalidURL, LocalProtocolError
from ..._version import __version__
from ..base import invalid_url_message, redact_url

#: Everything printable in ASCII stays as the adapter wrote it (escapes included); only
#: characters outside ASCII are percent-encoded.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_USER_AGENT = f"cloverleaf/{__version__}"
#: Headers the client writes itself, whatever the request says.
_OURS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class Origin:
    """Where one URL goes, prepared once: the pool key and the request line's pieces."""

    __slots__ = ("key", "host", "port", "tls", "target", "host_header", "where", "basic_auth")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        self.where = redact_url(url)
        if scheme not in ("http", "https") or not parts.hostname:
            raise InvalidURL(invalid_url_message(self.where), url=self.where)
        self.tls = scheme == "https"
        self.host = parts.hostname
        try:
            port = parts.port
        except ValueError:
            port = -1
        if port is not None and not 0 < port < 65536:
            raise InvalidURL(f"invalid port in URL {self.where!r}", url=self.where)
        self.port = port or (443 if self.tls else 80)
        self.key = (self.tls, self.host, self.port)
        path = parts.path or "/"
        target = path + ("?" + parts.query if parts.query else "")
        if not target.isascii():  # percent-encode what HTTP cannot carry raw, as httpx does
            target = quote(target, safe=_URL_SAFE)
        self.target = target  # ASCII now
        default_port = (self.tls and self.port == 443) or (not self.tls and self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        #: ``user:password@`` in the URL becomes Basic auth, as httpx and aiohttp make it
        self.basic_auth: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.basic_auth = "Basic " + base64.b64encode(pair).decode("ascii")


def request_head(method: str, origin: Origin, headers: dict[str, str], body: bytes | None) -> bytes:
    """The request head. A header that would split the head (CR or LF in it) is refused:
    a key pasted with a trailing newline must fail loudly, not inject a header."""
    lines = [f"{method} {origin.target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
    user_agent = authorization = False
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise LocalProtocolError(f"header {name.strip()!r} contains a line break or colon; check the "
                                     "configured key or header value", url=origin.where)
        lname = name.lower()
        if lname in _OURS:
            continue
        user_agent = user_agent or lname == "user-agent"
        authorization = authorization or lname == "authorization"
        lines.append(f"{name}: {value}\r\n")
    if not user_agent:
        lines.append(f"user-agent: {_USER_AGENT}\r\n")
    if origin.basic_auth is not None and not authorization:
        lines.append(f"authorization: {origin.basic_auth}\r\n")
    lines.append(f"content-length: {len(body) if body else 0}\r\n\r\n")
    try:
        return "".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise LocalProtocolError("a header value holds characters HTTP/1.1 headers cannot carry (not Latin-1); "
                                 "check the configured key or header value", url=origin.where) from None
