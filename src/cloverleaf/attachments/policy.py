"""The knobs of attachment loading, in one value the SDK and the server each build once.

The defaults are the safe ones for a library: 20 MB per attachment, no private address
reachable, local files allowed (the SDK's user owns the disk). The server builds its policy
with ``allow_local_paths=False`` because there the "user" is a remote client.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import ConfigError
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

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ConfigError("AttachmentPolicy.max_bytes must be positive")
        if self.max_redirects < 0:
            raise ConfigError("AttachmentPolicy.max_redirects must be zero or more")
        if isinstance(self.allow_hosts, str) or isinstance(self.allow_networks, str):
            raise ConfigError("AttachmentPolicy.allow_hosts/allow_networks take a tuple of strings, not one string")
        try:
            parse_networks(self.allow_networks)
        except ValueError as exc:
            raise ConfigError(f"AttachmentPolicy.allow_networks: {exc}") from None

    def host_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return any(name == h.lower().rstrip(".") for h in self.allow_hosts)

