"""The knobs of attachment loading, in one value the SDK and the server each build once.

The defaults are the safe ones for a library: 20 MB per attachment, no private address
reachable, local files allowed (the SDK's user owns the disk). The server builds its policy
with ``allow_local_paths=False`` because there the "user" is a remote client.

Per request, across all of one request's attachments: at most ``max_per_request`` (32) of
them, ``max_request_bytes`` (32 MB, what the strictest provider takes in one request) in
all, and ``request_timeout`` (30 s) for all of them, downloads running at once. Without
these, one small request naming many URLs makes the server download far more than it
received (amplification) and hold the request for the sum of the downloads.

``allow_hosts`` entries are ``host`` (any port) or ``host:port`` / ``[v6-address]:port``
(that port only).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from .._errors import ConfigError
from .._setting_values import boolean, seconds, text_list, whole
from .addresses import parse_networks

#: ``resolver(host, port) -> [ip, ...]``: how a host name becomes addresses (injectable for tests).
Resolver = Callable[[str, int], list[str]]


@dataclass
class AttachmentPolicy:
    #: Largest attachment, decoded, from any source (file, base64, download).
    max_bytes: int = 20 * 1024 * 1024
    #: Exact host names allowed even if they resolve to private addresses.
    allow_hosts: tuple[str, ...] = ()
    #: CIDR networks allowed even though they are private (``"10.1.0.0/16"``).
    allow_networks: tuple[str, ...] = ()
    #: False in the server: a local path or ``file://`` source is refused.
    allow_local_paths: bool = True
    #: Bound on each TCP (and TLS) connect.
    connect_timeout: float = 5.0
    #: Total deadline for a download: every redirect hop, the headers and the whole body.
    read_timeout: float = 20.0
    max_redirects: int = 5
    #: Injectable DNS; the default is ``socket.getaddrinfo`` (run in a thread when async).
    resolver: Resolver | None = None
    #: TLS verification for downloads: True (system/certifi roots), or an ``ssl.SSLContext``
    #: holding a private CA. Verification is never skipped silently.
    verify: bool | ssl.SSLContext = True
    #: Most attachments one request may carry (any source).
    max_per_request: int = 32
    #: Most bytes, decoded, all of one request's attachments may add up to.
    max_request_bytes: int = 32 * 1024 * 1024
    #: Deadline for resolving all of one request's attachments (downloads run concurrently).
    request_timeout: float = 30.0
    #: ``allow_hosts`` parsed: (lowercase name, port or None for any port)
    _hosts: tuple[tuple[str, int | None], ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        # named as the [attachments] key, which is how most policies are written
        for name in ("max_bytes", "max_per_request", "max_request_bytes"):
            setattr(self, name, whole(f"[attachments] {name}", getattr(self, name), minimum=1))
        for name in ("connect_timeout", "read_timeout", "request_timeout"):
            setattr(self, name, seconds(f"[attachments] {name}", getattr(self, name)))
        self.max_redirects = whole("[attachments] max_redirects", self.max_redirects)
        boolean("AttachmentPolicy.allow_local_paths", self.allow_local_paths)
        if not isinstance(self.verify, ssl.SSLContext):   # verify = "false" read as true, silently
            boolean("[attachments] verify", self.verify)
        if self.resolver is not None and not callable(self.resolver):   # called at the first download
            raise ConfigError("AttachmentPolicy.resolver must be a function (host, port) -> [address, ...]; "
                              "it cannot be set in cloverleaf.toml")
        # a host of 5 was taken as the name "5", a network of 5 was an AttributeError at load
        self.allow_hosts = text_list("[attachments] allow_hosts", self.allow_hosts, '"cdn.internal:8443"')
        self.allow_networks = text_list("[attachments] allow_networks", self.allow_networks, '"10.1.0.0/16"')
        try:
            parse_networks(self.allow_networks)
        except ValueError as exc:
            raise ConfigError(f"AttachmentPolicy.allow_networks: {exc}") from None
        self._hosts = tuple(_host_entry(entry) for entry in self.allow_hosts)

    def host_allowed(self, host: str, port: int | None = None) -> bool:
        """Whether ``host`` (on ``port``) is named in ``allow_hosts``; an entry with a port
        allows that port only."""
        name = host.lower().rstrip(".").strip("[]")
        return any(name == h and (p is None or p == port) for h, p in self._hosts)


def _host_entry(entry: str) -> tuple[str, int | None]:
    """``"cdn.test"``, ``"cdn.test:8443"``, ``"[::1]:8080"`` or ``"::1"`` -> (name, port)."""
    text = str(entry).strip()
    port_text = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"AttachmentPolicy.allow_hosts: cannot read {entry!r}; use [address]:port")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"AttachmentPolicy.allow_hosts: {entry!r} has no valid port (1-65535)")
        port = int(port_text)
    host = host.lower().rstrip(".")
    if not host:
        raise ConfigError(f"AttachmentPolicy.allow_hosts: {entry!r} names no host")
    return host, port

