"""Which IP addresses an attachment download may reach, whatever their spelling.

Server-side request forgery hides in spelling: ``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
``127.1``, ``[::ffff:127.0.0.1]``, ``[::ffff:7f00:1]`` and ``[64:ff9b::a00:1]`` all lead to a
loopback or private host. So the host of a URL is first parsed the way browsers and libc parse
it (every numeric IPv4 form that ``inet_aton`` and the WHATWG URL standard accept, IPv6 with
zone ids), then the address, and any IPv4 address embedded in an IPv6 one, is classified
against the special-purpose registries (RFC 6890 and successors). Anything that is not plainly
public unicast gets a category name; the SSRF check refuses it unless allow-listed.
"""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

# --------------------------------------------------------------------------- parsing

_HEX_PART = re.compile(r"0[xX][0-9a-fA-F]*")


def _ends_in_number(label: str) -> bool:
    """WHATWG "ends in a number": the last label decides whether a host is IPv4 at all."""
    return label.isdigit() and label.isascii() or bool(_HEX_PART.fullmatch(label))


def _parse_ipv4_part(part: str) -> int:
    if not part:
        raise ValueError("empty part")
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        return int(digits, 16) if digits else 0
    if not (part.isascii() and part.isdigit()):
        raise ValueError(f"not a number: {part!r}")
    if len(part) > 1 and part[0] == "0":
        return int(part, 8)  # raises on 8 or 9, as inet_aton does
    return int(part, 10)


def parse_ipv4(host: str) -> IPv4Address | None:
    """Parse every numeric IPv4 spelling (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``,
    mixed bases, one trailing dot). Returns None when ``host`` is a domain name; raises
    ValueError when it looks numeric but is no valid address (a browser refuses it too)."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not _ends_in_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(f"too many parts in IPv4 address {host!r}")
    numbers = [_parse_ipv4_part(p) for p in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"IPv4 address {host!r} is out of range")
    value = last
    for i, n in enumerate(leading):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


def parse_ip(host: str) -> IPAddress | None:
    """The address a URL host names, or None for a domain name.

    Accepts bracketed or bare IPv6 (with a ``%zone`` id, also percent-encoded as ``%25``)
    and every numeric IPv4 spelling. Raises ValueError for a malformed numeric host.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        address, _, _zone = text.partition("%")
        return IPv6Address(address)
    return parse_ipv4(text)


def unwrap_mapped(address: IPAddress) -> IPAddress:
    """``::ffff:a.b.c.d`` is a.b.c.d to a dual-stack socket: connect and compare as IPv4."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# --------------------------------------------------------------------------- classifying

_V4_SPECIAL: list[tuple[IPv4Network, str]] = [
    (IPv4Network("0.0.0.0/8"), "unspecified"),
    (IPv4Network("10.0.0.0/8"), "private (RFC 1918)"),
    (IPv4Network("100.64.0.0/10"), "shared address space (RFC 6598)"),
    (IPv4Network("127.0.0.0/8"), "loopback"),
    (IPv4Network("169.254.169.254/32"), "link-local (cloud metadata endpoint)"),
    (IPv4Network("169.254.0.0/16"), "link-local"),
    (IPv4Network("172.16.0.0/12"), "private (RFC 1918)"),
    (IPv4Network("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (IPv4Network("192.0.2.0/24"), "documentation"),
    (IPv4Network("192.88.99.0/24"), "reserved (6to4 relay anycast)"),
    (IPv4Network("192.168.0.0/16"), "private (RFC 1918)"),
    (IPv4Network("198.18.0.0/15"), "benchmarking"),
    (IPv4Network("198.51.100.0/24"), "documentation"),
    (IPv4Network("203.0.113.0/24"), "documentation"),
    (IPv4Network("224.0.0.0/4"), "multicast"),
    (IPv4Network("255.255.255.255/32"), "broadcast"),
    (IPv4Network("240.0.0.0/4"), "reserved"),
]

# IPv6 ranges that carry an IPv4 address: classify the embedded one.
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")
_V4_COMPATIBLE = IPv6Network("::/96")

_V6_SPECIAL: list[tuple[IPv6Network, str]] = [
    (IPv6Network("::/128"), "unspecified"),
    (IPv6Network("::1/128"), "loopback"),
    (IPv6Network("64:ff9b:1::/48"), "private (local-use NAT64)"),
    (IPv6Network("100::/64"), "reserved (discard-only)"),
    (IPv6Network("2001:2::/48"), "benchmarking"),
    (IPv6Network("2001:db8::/32"), "documentation"),
    (IPv6Network("2001::/23"), "reserved (IETF protocol assignments)"),
    (IPv6Network("3fff::/20"), "documentation"),
    (IPv6Network("fd00:ec2::254/128"), "unique-local (cloud metadata endpoint)"),
    (IPv6Network("fc00::/7"), "unique-local"),
    (IPv6Network("fe80::/10"), "link-local"),
    (IPv6Network("fec0::/10"), "reserved (deprecated site-local)"),
    (IPv6Network("ff00::/8"), "multicast"),
]
_V6_GLOBAL_UNICAST = IPv6Network("2000::/3")


def _classify_v4(address: IPv4Address) -> str | None:
    for network, category in _V4_SPECIAL:
        if address in network:
            return category
    return None


def _embedded_v4(address: IPv6Address) -> tuple[IPv4Address, str] | None:
    """The IPv4 address an IPv6 transition form carries, and the form's name."""
    value = int(address)
    if address in _NAT64:
        return IPv4Address(value & 0xFFFFFFFF), "NAT64"
    if address in _SIX_TO_FOUR:
        return IPv4Address((value >> 80) & 0xFFFFFFFF), "6to4"
    if address in _V4_COMPATIBLE and value > 1:
        return IPv4Address(value & 0xFFFFFFFF), "IPv4-compatible"
    return None


def classify(address: IPAddress) -> str | None:
    """None for a public unicast address; otherwise why it may not be fetched from
    (``"loopback"``, ``"private (RFC 1918)"``, ``"link-local (cloud metadata endpoint)"``...)."""
    if isinstance(address, IPv4Address):
        return _classify_v4(address)
    if address.ipv4_mapped is not None:
        inner = _classify_v4(address.ipv4_mapped)
        return f"{inner} (IPv4-mapped {address.ipv4_mapped})" if inner else None
    if address in _TEREDO and address.teredo is not None:
        server, client = address.teredo
        for carried in (client, server):
            inner = _classify_v4(carried)
            if inner:
                return f"{inner} (Teredo-embedded {carried})"
        return "reserved (Teredo tunnel)"
    embedded = _embedded_v4(address)
    if embedded is not None:
        v4, form = embedded
        inner = _classify_v4(v4)
        if inner:
            return f"{inner} ({form}-embedded {v4})"
        if form == "IPv4-compatible":
            return f"reserved (deprecated IPv4-compatible {v4})"
        return None
    for network, category in _V6_SPECIAL:
        if address in network:
            return category
    if address not in _V6_GLOBAL_UNICAST:
        return "reserved"
    return None


def in_networks(address: IPAddress, networks: list[IPv4Network | IPv6Network]) -> bool:
    """Whether ``address`` (or the IPv4 address it maps) lies in one of ``networks``."""
    candidates = {address, unwrap_mapped(address)}
    return any(a.version == n.version and a in n for a in candidates for n in networks)


def parse_networks(cidrs: tuple[str, ...] | list[str]) -> list[IPv4Network | IPv6Network]:
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs]


# --------------------------------------------------------------------------- host names

#: Names cloud providers serve instance metadata (and credentials) on.
METADATA_HOSTS = frozenset({
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
    "metadata.tencentyun.com",
    "metadata.platformequinix.com",
})

#: Namespaces reserved for private or local use: no public image lives there.
_PRIVATE_SUFFIXES = (".localhost", ".internal", ".local", ".home.arpa", ".intranet", ".corp", ".lan")


def classify_name(host: str) -> tuple[str, str] | None:
    """``(rule, reason)`` when a host *name* alone is enough to refuse it, else None."""
    name = host.lower().rstrip(".")
    if name in METADATA_HOSTS:
        return "metadata-host", "cloud metadata endpoint"
    if name == "localhost" or name.endswith(_PRIVATE_SUFFIXES):
        return "private-host", "name in a private-use namespace"
    return None
