"""Address parsing (every numeric spelling), classification, names, and the SSRF check's
building blocks, without any network."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from cloverleaf._errors import AttachmentError, ConfigError
from cloverleaf.attachments import AttachmentPolicy
from cloverleaf.attachments.addresses import classify, classify_name, in_networks, parse_ip, parse_networks
from cloverleaf.attachments.ssrf import check_addresses, parse_http_url, pin, precheck


@pytest.mark.parametrize(("spelling", "address"), [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0X7F.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("0x7f.0.0.0x1", "127.0.0.1"),
    ("0x7f.00.0.01", "127.0.0.1"),
    ("10.0.0.1.", "10.0.0.1"),
    ("0", "0.0.0.0"),
    ("0x", "0.0.0.0"),
    ("169.16689662", "169.254.169.254"),
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
    ("8.8.8.8", "8.8.8.8"),
])
def test_every_numeric_ipv4_spelling(spelling: str, address: str) -> None:
    assert parse_ip(spelling) == IPv4Address(address)


@pytest.mark.parametrize("spelling", ["256.0.0.1", "1.2.3.4.5", "08.0.0.1", "4294967296", "1.2.3.256", "1..2.3"])
def test_malformed_numeric_hosts_are_errors_not_names(spelling: str) -> None:
    with pytest.raises(ValueError):
        parse_ip(spelling)


@pytest.mark.parametrize("name", ["example.com", "1.2.3.4.example", "0x7f.example", "localhost", "xn--nxa.test"])
def test_names_are_not_addresses(name: str) -> None:
    assert parse_ip(name) is None


@pytest.mark.parametrize(("spelling", "address"), [
    ("::1", "::1"),
    ("[::1]", "::1"),
    ("fe80::1%eth0", "fe80::1"),
    ("fe80::1%25eth0", "fe80::1"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"),
])
def test_ipv6_forms(spelling: str, address: str) -> None:
    assert parse_ip(spelling) == IPv6Address(address)


@pytest.mark.parametrize(("address", "category"), [
    ("127.0.0.1", "loopback"),
    ("10.1.2.3", "private (RFC 1918)"),
    ("172.31.255.255", "private (RFC 1918)"),
    ("192.168.1.1", "private (RFC 1918)"),
    ("100.64.0.1", "shared address space (RFC 6598)"),
    ("169.254.169.254", "link-local (cloud metadata endpoint)"),
    ("169.254.1.1", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.251", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.7", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.7", "documentation"),
    ("198.19.0.1", "benchmarking"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("fc00::1", "unique-local"),
    ("fd00:ec2::254", "unique-local (cloud metadata endpoint)"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("::ffff:10.0.0.1", "private (RFC 1918) (IPv4-mapped 10.0.0.1)"),
    ("::ffff:7f00:1", "loopback (IPv4-mapped 127.0.0.1)"),
    ("::127.0.0.1", "loopback (IPv4-compatible-embedded 127.0.0.1)"),
    ("::8.8.8.8", "reserved (deprecated IPv4-compatible 8.8.8.8)"),
    ("2002:c0a8:101::1", "private (RFC 1918) (6to4-embedded 192.168.1.1)"),
    ("64:ff9b::a9fe:a9fe", "link-local (cloud metadata endpoint) (NAT64-embedded 169.254.169.254)"),
    ("64:ff9b:1::1", "private (local-use NAT64)"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private (RFC 1918) (Teredo-embedded 10.0.0.1)"),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "reserved (Teredo tunnel)"),
    ("4000::1", "reserved"),
])
def test_classification(address: str, category: str) -> None:
    assert classify(parse_ip(address)) == category  # type: ignore[arg-type]


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "2002:808:808::1", "2a00:1450:4001::200e"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert classify(parse_ip(address)) is None  # type: ignore[arg-type]


def test_networks_match_mapped_addresses() -> None:
    nets = parse_networks(("127.0.0.0/8", "fd00::/8"))
    assert in_networks(IPv6Address("::ffff:127.0.0.5"), nets)
    assert in_networks(IPv6Address("fd00::1"), nets)
    assert not in_networks(IPv4Address("10.0.0.1"), nets)


@pytest.mark.parametrize(("name", "rule"), [
    ("metadata.google.internal", "metadata-host"),
    ("Metadata.Google.Internal.", "metadata-host"),
    ("metadata", "metadata-host"),
    ("instance-data.ec2.internal", "metadata-host"),
    ("localhost", "private-host"),
    ("api.localhost", "private-host"),
    ("db.internal", "private-host"),
    ("printer.local", "private-host"),
    ("nas.home.arpa", "private-host"),
])
def test_names_refused_without_lookup(name: str, rule: str) -> None:
    verdict = classify_name(name)
    assert verdict is not None and verdict[0] == rule


def test_public_names_pass_the_name_check() -> None:
    assert classify_name("images.example.com") is None
    assert classify_name("metadata.example.com") is None


# --------------------------------------------------------------------------- the check itself


def test_parse_http_url_pieces() -> None:
    t = parse_http_url("HTTPS://User:Pw@Images.Example.COM./a%20b.png?x=1#frag")
    assert (t.scheme, t.host, t.port, t.target, t.literal) == ("https", "images.example.com", 443, "/a%20b.png?x=1",
                                                                 None)
    assert t.host_header == "images.example.com"
    assert "Pw" not in t.describe() and "x=1" not in t.describe()
    v6 = parse_http_url("http://[2606:4700::1]:8080")
    assert (v6.host_header, v6.target, v6.url) == ("[2606:4700::1]:8080", "/", "http://[2606:4700::1]:8080/")
    assert parse_http_url("http://0x7f.1/").host == "127.0.0.1"
    assert parse_http_url("http://[::ffff:7f00:1]/").host == "127.0.0.1"


def test_idna_look_alikes_are_folded_before_the_name_check() -> None:
    # A circled "m" folds to "m" under IDNA nameprep: still the metadata host.
    with pytest.raises(AttachmentError) as info:
        precheck(parse_http_url("http://\u24dcetadata.google.internal/"), AttachmentPolicy())
    assert info.value.rule == "metadata-host"


@pytest.mark.parametrize("url", ["http://exa mple.com/", "http:///nohost", "http://a..b/", "http://[::1/",
                                 "http://host:99999/"])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(AttachmentError) as info:
        parse_http_url(url)
    assert info.value.rule == "invalid-url"


def test_check_addresses_refuses_any_private_answer_and_pins_ipv4_first() -> None:
    target = parse_http_url("https://cdn.example.com/x.png")
    policy = AttachmentPolicy()
    pinned = check_addresses(target, ["2606:4700::1", "93.184.216.34"], policy)
    assert pinned.ip == "93.184.216.34"
    assert pinned.connect_url == "https://93.184.216.34:443/x.png"
    assert pinned.headers["Host"] == "cdn.example.com"
    assert pinned.extensions == {"sni_hostname": "cdn.example.com"}
    with pytest.raises(AttachmentError) as info:
        check_addresses(target, ["93.184.216.34", "fd00::1"], policy)
    assert info.value.rule == "private-address"
    with pytest.raises(AttachmentError) as info:
        check_addresses(target, [], policy)
    assert info.value.rule == "dns"
    with pytest.raises(AttachmentError) as info:
        check_addresses(target, ["not-an-ip"], policy)
    assert info.value.rule == "dns"


def test_ipv6_pins_are_bracketed_and_mapped_pins_become_ipv4() -> None:
    target = parse_http_url("http://v6.example.com:8080/a")
    assert check_addresses(target, ["2606:4700::1"], AttachmentPolicy()).connect_url == "http://[2606:4700::1]:8080/a"
    allowed = AttachmentPolicy(allow_networks=("10.0.0.0/8",))
    assert check_addresses(target, ["::ffff:10.1.1.1"], allowed).ip == "10.1.1.1"


def test_ip_literal_over_https_sends_no_sni_name() -> None:
    pinned = precheck(parse_http_url("https://93.184.216.34/x.png"), AttachmentPolicy())
    assert pinned is not None and pinned.extensions == {} and pinned.ip == "93.184.216.34"


def test_sync_pin_resolves_once_through_the_injected_resolver() -> None:
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.216.34"]

    pinned = pin("http://images.example.com:8080/a.png", AttachmentPolicy(resolver=resolver))
    assert calls == [("images.example.com", 8080)]
    assert pinned.connect_url == "http://93.184.216.34:8080/a.png"


def test_policy_validation() -> None:
    with pytest.raises(ConfigError):
        AttachmentPolicy(allow_networks=("10.0.0.0/33",))
    with pytest.raises(ConfigError):
        AttachmentPolicy(allow_networks="10.0.0.0/8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        AttachmentPolicy(max_bytes=0)
    assert AttachmentPolicy(allow_hosts=("CDN.test.",)).host_allowed("cdn.test")


def test_a_policy_takes_a_set_of_hosts_and_networks_as_it_did() -> None:
    """Python callers pass sets; the type checks added for the file's arrays refused them."""
    policy = AttachmentPolicy(allow_hosts={"cdn.internal"}, allow_networks=frozenset({"10.0.0.0/8"}))
    assert policy.host_allowed("cdn.internal")
