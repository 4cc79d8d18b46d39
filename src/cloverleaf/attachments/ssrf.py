"""The server-side request forgery guard: decide where a download may connect, once.

A URL is parsed here and nowhere else, so the host that is checked is the host that is
contacted. A host name is resolved exactly once (through an injectable resolver) and every
address it resolves to must be public unless allow-listed; the download then connects to the
checked address itself, so a DNS server that answers "public" to the check and "private" to
the connection (rebinding) gains nothing. The original host name still travels in the
``Host`` header and as the TLS server name, so virtual hosting and certificate verification
work as if the name had been looked up normally.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from .._errors import AttachmentError
from .addresses import (
    IPAddress,
    classify,
    classify_name,
    in_networks,
    parse_ip,
    parse_networks,
    unwrap_mapped,
)
from .policy import AttachmentPolicy, Resolver

ALLOWED_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def redact_url(url: str) -> str:
    """The URL without credentials, query or fragment: safe to put in an error message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.scheme.lower() == "data":
        return "data: URL"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """An http(s) URL taken apart: ``host`` is lowercase ASCII (canonical when numeric)."""

    scheme: str
    host: str
    port: int
    #: Path and query, what goes on the request line.
    target: str
    #: The address when the host is an IP literal in any spelling.
    literal: IPAddress | None
    #: The URL as the user spelled it, redacted (for messages).
    shown: str = ""

    @property
    def _host_for_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def host_header(self) -> str:
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return self._host_for_url
        return f"{self._host_for_url}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.target}"

    def describe(self) -> str:
        return self.shown or redact_url(self.url)

    def join(self, location: str) -> str:
        """Where a redirect's ``Location`` points, relative to this URL."""
        return urljoin(self.url, location.strip())


def parse_http_url(url: str) -> HttpTarget:
    """Take an http(s) URL apart, refusing other schemes and malformed hosts."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise AttachmentError(f"attachment URL {redact_url(url)} is malformed", rule="invalid-url",
                              detail=redact_url(url)) from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise AttachmentError(
            f"attachment URL scheme {scheme or '(none)'!r} is not allowed; only http and https URLs are fetched",
            rule="scheme", detail=scheme)
    raw_host = parts.hostname or ""
    if not raw_host:
        raise AttachmentError(f"attachment URL {redact_url(url)} has no host", rule="invalid-url", detail=redact_url(url))
    try:
        literal = parse_ip(raw_host)
    except ValueError:
        raise AttachmentError(f"attachment URL host {raw_host!r} is neither a valid IP address nor a host name",
                              rule="invalid-url", detail=raw_host) from None
    if literal is not None:
        literal = unwrap_mapped(literal) if _is_mapped(literal) else literal
        host = str(literal)
    else:
        host = _ascii_host(raw_host)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return HttpTarget(scheme, host, port or _DEFAULT_PORTS[scheme], target, literal, redact_url(url))


def _is_mapped(address: IPAddress) -> bool:
    return address.version == 6 and getattr(address, "ipv4_mapped", None) is not None


def _ascii_host(host: str) -> str:
    name = host.rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")  # nameprep folds look-alike letters
        except UnicodeError:
            raise AttachmentError(f"attachment URL host {host!r} is not a valid host name",
                                  rule="invalid-url", detail=host) from None
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
    if not name or not set(name) <= allowed or ".." in name:
        raise AttachmentError(f"attachment URL host {host!r} is not a valid host name", rule="invalid-url", detail=host)
    return name


@dataclass(frozen=True, slots=True)
class Pinned:
    """A checked destination: connect to ``ip``, speak to ``target.host``."""

    target: HttpTarget
    ip: str

    @property
    def connect_url(self) -> str:
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.target.scheme}://{ip}:{self.target.port}{self.target.target}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.target.host_header, "Accept-Encoding": "identity"}

    @property
    def extensions(self) -> dict[str, str]:
        """httpx/httpcore request extensions: TLS SNI and verification use the host *name*."""
        if self.target.scheme == "https" and self.target.literal is None:
            return {"sni_hostname": self.target.host}
        return {}


def precheck(target: HttpTarget, policy: AttachmentPolicy) -> Pinned | None:
    """Check what can be checked without DNS. Returns the pin for an IP literal, None when
    the host name still has to be resolved (then call :func:`check_addresses`)."""
    allowed_host = policy.host_allowed(target.host, target.port)
    if target.literal is not None:
        if not allowed_host:
            _refuse_if_disallowed(target, target.literal, policy, resolved=False)
        return Pinned(target, str(unwrap_mapped(target.literal)))
    named = classify_name(target.host)
    if named and not allowed_host:
        rule, reason = named
        raise AttachmentError(
            f"refusing to fetch {target.describe()}: host {target.host!r} is a {reason}; "
            "add it to AttachmentPolicy.allow_hosts if it is a trusted source",
            rule=rule, detail=target.host)
    return None


def check_addresses(target: HttpTarget, addresses: list[str], policy: AttachmentPolicy) -> Pinned:
    """Refuse if ANY resolved address is disallowed; otherwise pin the first (IPv4 preferred)."""
    parsed: list[IPAddress] = []
    for text in addresses:
        try:
            address = parse_ip(text)
        except ValueError:
            address = None
        if address is None:
            raise AttachmentError(f"the resolver returned an invalid address for {target.host!r}",
                                  rule="dns", detail=target.host)
        parsed.append(unwrap_mapped(address))
    if not parsed:
        raise AttachmentError(f"could not resolve host {target.host!r} of {target.describe()}",
                              rule="dns", detail=target.host)
    if not policy.host_allowed(target.host, target.port):
        for address in parsed:
            _refuse_if_disallowed(target, address, policy, resolved=True)
    first = next((a for a in parsed if a.version == 4), parsed[0])
    return Pinned(target, str(first))


def _refuse_if_disallowed(target: HttpTarget, address: IPAddress, policy: AttachmentPolicy, *, resolved: bool) -> None:
    category = classify(address)
    if category is None or in_networks(address, parse_networks(policy.allow_networks)):
        return
    via = f"host {target.host!r} resolves to {address}" if resolved else f"address {address}"
    raise AttachmentError(
        f"refusing to fetch {target.describe()}: {via}, which is {category}; "
        "add the host to AttachmentPolicy.allow_hosts or its network to allow_networks if it is a trusted source",
        rule="private-address", detail=f"{address} ({category})")


def default_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the system resolver's order. A name the IDNA
    codec cannot encode (a label over 63 characters) resolves to nothing: an ``OSError`` like
    any failed lookup, not the codec's ``UnicodeError`` (which callers took for a crash)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not a valid host name ({exc})") from None
    seen: dict[str, None] = {}
    for *_, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


def _lookup_failed(target: HttpTarget, exc: OSError) -> AttachmentError:
    return AttachmentError(f"could not resolve host {target.host!r} of {target.describe()}: {exc}",
                           rule="dns", detail=target.host)


def pin(url: str, policy: AttachmentPolicy) -> Pinned:
    """Parse, check, resolve once and check again: where a download of ``url`` may connect."""
    target = parse_http_url(url)
    pinned = precheck(target, policy)
    if pinned is not None:
        return pinned
    resolver: Resolver = policy.resolver or default_resolver
    try:
        addresses = resolver(target.host, target.port)
    except OSError as exc:
        raise _lookup_failed(target, exc) from None
    return check_addresses(target, list(addresses), policy)


async def apin(url: str, policy: AttachmentPolicy) -> Pinned:
    """:func:`pin` for async callers: the (blocking) resolver runs in a worker thread."""
    import anyio.to_thread

    target = parse_http_url(url)
    pinned = precheck(target, policy)
    if pinned is not None:
        return pinned
    resolver: Resolver = policy.resolver or default_resolver
    try:
        addresses = await anyio.to_thread.run_sync(resolver, target.host, target.port, abandon_on_cancel=True)
    except OSError as exc:
        raise _lookup_failed(target, exc) from None
    return check_addresses(target, list(addresses), policy)
