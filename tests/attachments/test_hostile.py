"""The hostile corpus: every source here must be refused, with the expected rule, before any
connection leaves loopback (the autouse network guard in conftest fails the test otherwise).

Sources that need no server (numeric spellings, IPv6 forms, metadata names, resolver-mapped
names, schemes, local paths in the server) run through both ``resolve`` and ``aresolve``;
those that need the loopback server (redirects into private space, oversized, endless and
drip-fed bodies) are allowed to reach 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cloverleaf._errors import AttachmentError
from cloverleaf.attachments import AttachmentPolicy, aresolve, resolve

from .conftest import MapResolver, MediaServer, loopback_policy, media

RESOLVER_TABLE: dict[str, Any] = {
    "internal.test": ["10.0.0.5"],
    "mixed.test": ["93.184.216.34", "192.168.1.10"],  # one private answer is enough to refuse
    "v6private.test": ["fd12:3456::1"],
    "mapped.test": ["::ffff:169.254.169.254"],
    "loop6.test": ["::1"],
    "cgnat.test": ["100.64.0.1"],
    "linklocal6.test": ["fe80::1%2"],
}

# (id, source, expected rule, policy overrides)
NO_SERVER: list[tuple[str, str, str, dict[str, Any]]] = [
    # numeric IPv4 spellings of loopback, private and special addresses
    ("dotted-loopback", "http://127.0.0.1/x.png", "private-address", {}),
    ("decimal", "http://2130706433/x.png", "private-address", {}),
    ("octal", "http://0177.0.0.1/x.png", "private-address", {}),
    ("hex-short", "http://0x7f.1/x.png", "private-address", {}),
    ("short-form", "http://127.1/x.png", "private-address", {}),
    ("hex-whole", "http://0x7f000001/x.png", "private-address", {}),
    ("octal-whole", "http://017700000001/x.png", "private-address", {}),
    ("mixed-bases", "http://0x7f.0.0.0x1/x.png", "private-address", {}),
    ("zero", "http://0/x.png", "private-address", {}),
    ("rfc1918-10", "http://10.0.0.1/x.png", "private-address", {}),
    ("rfc1918-172", "http://172.16.5.4/x.png", "private-address", {}),
    ("rfc1918-192-trailing-dot", "http://192.168.0.1./x.png", "private-address", {}),
    ("shared-cgnat", "http://100.64.0.1/x.png", "private-address", {}),
    ("aws-metadata", "http://169.254.169.254/latest/meta-data/iam/", "private-address", {}),
    ("metadata-hex", "http://0xa9fea9fe/latest/", "private-address", {}),
    ("metadata-decimal", "http://2852039166/latest/", "private-address", {}),
    ("alibaba-metadata", "http://100.100.100.200/latest/", "private-address", {}),
    ("oracle-metadata", "http://192.0.0.192/opc/v2/", "private-address", {}),
    ("multicast", "http://224.0.0.1/x.png", "private-address", {}),
    ("broadcast", "http://255.255.255.255/x.png", "private-address", {}),
    ("reserved-240", "http://240.0.0.1/x.png", "private-address", {}),
    ("documentation", "http://192.0.2.1/x.png", "private-address", {}),
    ("benchmark", "http://198.18.0.1/x.png", "private-address", {}),
    ("userinfo-trick", "http://trusted.example.com:hunter2@127.0.0.1/x.png", "private-address", {}),
    # IPv6 forms
    ("v6-loopback", "http://[::1]/x.png", "private-address", {}),
    ("v6-unspecified", "http://[::]/x.png", "private-address", {}),
    ("v4-mapped-dotted", "http://[::ffff:127.0.0.1]/x.png", "private-address", {}),
    ("v4-mapped-hex", "http://[::ffff:7f00:1]/x.png", "private-address", {}),
    ("v4-mapped-metadata", "http://[::ffff:a9fe:a9fe]/latest/", "private-address", {}),
    ("v4-compatible", "http://[::127.0.0.1]/x.png", "private-address", {}),
    ("link-local-zone", "http://[fe80::1%25eth0]/x.png", "private-address", {}),
    ("aws-metadata-v6", "http://[fd00:ec2::254]/latest/", "private-address", {}),
    ("unique-local", "http://[fc00::1]/x.png", "private-address", {}),
    ("6to4-loopback", "http://[2002:7f00:1::]/x.png", "private-address", {}),
    ("nat64-private", "http://[64:ff9b::a00:1]/x.png", "private-address", {}),
    ("teredo-private", "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/x.png", "private-address", {}),
    ("v6-multicast", "http://[ff02::1]/x.png", "private-address", {}),
    ("site-local", "http://[fec0::1]/x.png", "private-address", {}),
    # metadata and private-use names, refused without any lookup
    ("gce-metadata", "http://metadata.google.internal/computeMetadata/v1/", "metadata-host", {}),
    ("gce-metadata-case-dot", "http://METADATA.Google.Internal./computeMetadata/v1/", "metadata-host", {}),
    ("bare-metadata", "http://metadata/computeMetadata/v1/", "metadata-host", {}),
    ("localhost", "http://localhost:8080/x.png", "private-host", {}),
    ("sub-localhost", "https://evil.localhost/x.png", "private-host", {}),
    # names the (test) resolver maps into private space
    ("resolves-private", "http://internal.test/x.png", "private-address", {}),
    ("resolves-mixed", "https://mixed.test/x.png", "private-address", {}),
    ("resolves-ula", "http://v6private.test/x.png", "private-address", {}),
    ("resolves-mapped-metadata", "http://mapped.test/x.png", "private-address", {}),
    ("resolves-v6-loopback", "http://loop6.test/x.png", "private-address", {}),
    ("resolves-cgnat", "http://cgnat.test/x.png", "private-address", {}),
    ("resolves-link-local-v6", "http://linklocal6.test/x.png", "private-address", {}),
    ("nxdomain", "http://nxdomain.test/x.png", "dns", {}),
    # schemes other than http(s)
    ("gopher", "gopher://127.0.0.1:6379/_FLUSHALL", "scheme", {}),
    ("ftp", "ftp://example.com/image.png", "scheme", {}),
    ("dict", "dict://127.0.0.1:11211/stats", "scheme", {}),
    ("javascript", "javascript:alert(1)", "scheme", {}),
    ("data-wrong-type", "data:text/html;base64,PGh0bWw+PC9odG1sPg==", "unsupported-type", {}),
    # the server never reads its own disk
    ("file-url-in-server", "file:///etc/passwd", "local-path", {"allow_local_paths": False}),
    ("file-localhost-in-server", "file://localhost/etc/hostname", "local-path", {"allow_local_paths": False}),
    ("bare-path-in-server", "/etc/passwd", "local-path", {"allow_local_paths": False}),
    ("home-path-in-server", "~/.ssh/id_rsa", "local-path", {"allow_local_paths": False}),
    ("relative-path-in-server", "../../secrets.png", "local-path", {"allow_local_paths": False}),
    ("file-remote-share", "file://fileserver/share/x.png", "local-path", {}),
]


def _policy(overrides: dict[str, Any]) -> AttachmentPolicy:
    return AttachmentPolicy(resolver=MapResolver(RESOLVER_TABLE), connect_timeout=1.0, read_timeout=3.0, **overrides)


@pytest.mark.parametrize(("source", "rule", "overrides"), [c[1:] for c in NO_SERVER], ids=[c[0] for c in NO_SERVER])
def test_refused_sync(source: str, rule: str, overrides: dict[str, Any], network_guard: Any) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(source, policy=_policy(overrides), type="image")
    assert info.value.rule == rule, str(info.value)
    assert "hunter2" not in str(info.value)
    assert network_guard.connects == []  # refused before any connection


@pytest.mark.parametrize(("source", "rule", "overrides"), [c[1:] for c in NO_SERVER], ids=[c[0] for c in NO_SERVER])
async def test_refused_async(source: str, rule: str, overrides: dict[str, Any], network_guard: Any) -> None:
    with pytest.raises(AttachmentError) as info:
        await aresolve(source, policy=_policy(overrides), type="image")
    assert info.value.rule == rule, str(info.value)
    assert network_guard.connects == []


def test_refusal_messages_name_the_rule_and_address() -> None:
    with pytest.raises(AttachmentError) as info:
        resolve("http://0x7f.1/a.png?token=SECRET", policy=_policy({}))
    message = str(info.value)
    assert "127.0.0.1" in message and "loopback" in message
    assert "SECRET" not in message  # queries may carry signed tokens
    assert info.value.detail == "127.0.0.1 (loopback)"
    with pytest.raises(AttachmentError) as info:
        resolve("http://internal.test/a.png", policy=_policy({}))
    assert "internal.test" in str(info.value) and "10.0.0.5" in str(info.value)
    assert "RFC 1918" in str(info.value)


def test_the_local_server_itself_is_refused_without_the_allow_list(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(server.url("/media/image.png"))
    assert info.value.rule == "private-address"
    assert server.seen == []


# --------------------------------------------------------------------------- via the loopback server

REDIRECT_TARGETS = [
    ("to-rfc1918", "http://10.0.0.1/x.png", "private-address"),
    ("to-metadata", "http://169.254.169.254/latest/meta-data/", "private-address"),
    ("to-mapped-v6", "http://[::ffff:10.0.0.1]/x.png", "private-address"),
    ("to-metadata-name", "http://metadata.google.internal/computeMetadata/v1/", "metadata-host"),
    ("to-name-resolving-private", "http://internal.test/x.png", "private-address"),
    ("to-decimal-private", "http://167772161/x.png", "private-address"),
    ("to-file", "file:///etc/passwd", "scheme"),
    ("to-gopher", "gopher://127.0.0.1:6379/_INFO", "scheme"),
]


@pytest.mark.parametrize(("target", "rule"), [c[1:] for c in REDIRECT_TARGETS], ids=[c[0] for c in REDIRECT_TARGETS])
@pytest.mark.parametrize("status", [301, 302, 307])
def test_redirect_into_private_space(server: MediaServer, target: str, rule: str, status: int) -> None:
    from urllib.parse import quote

    policy = loopback_policy(resolver=MapResolver(RESOLVER_TABLE))
    url = server.url(f"/redirect?status={status}&to={quote(target, safe='')}")
    with pytest.raises(AttachmentError) as info:
        resolve(url, policy=policy)
    assert info.value.rule == rule, str(info.value)
    assert len(server.seen) == 1  # the first hop only; the target was never contacted


async def test_redirect_chain_ending_in_private_space(server: MediaServer) -> None:
    from urllib.parse import quote

    final = quote("http://169.254.169.254/latest/meta-data/", safe="")
    middle = quote(f"/redirect?to={final}", safe="")
    with pytest.raises(AttachmentError) as info:
        await aresolve(server.url(f"/redirect?to={middle}"), policy=loopback_policy())
    assert info.value.rule == "private-address"
    assert "169.254.169.254" in str(info.value)
    assert len(server.seen) == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_redirect_loop_is_cut_off(server: MediaServer, mode: str) -> None:
    policy = loopback_policy()
    with pytest.raises(AttachmentError) as info:
        if mode == "sync":
            resolve(server.url("/loop"), policy=policy)
        else:
            await aresolve(server.url("/loop"), policy=policy)
    assert info.value.rule == "too-many-redirects"
    assert server.paths() == ["/loop"] * 6  # the first request and five redirects


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_content_length_over_the_limit_is_refused_before_the_body(server: MediaServer, mode: str) -> None:
    policy = loopback_policy(max_bytes=1_000_000)
    with pytest.raises(AttachmentError) as info:
        if mode == "sync":
            resolve(server.url("/big"), policy=policy)
        else:
            await aresolve(server.url("/big"), policy=policy)
    assert info.value.rule == "too-large"
    assert "Content-Length" in str(info.value) and "1000000" in str(info.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_endless_chunked_body_is_cut_off(server: MediaServer, mode: str) -> None:
    policy = loopback_policy(max_bytes=256 * 1024)
    with pytest.raises(AttachmentError) as info:
        if mode == "sync":
            resolve(server.url("/endless"), policy=policy)
        else:
            await aresolve(server.url("/endless"), policy=policy)
    assert info.value.rule == "too-large"
    assert "ran past" in str(info.value)


def test_a_compressed_body_is_not_inflated(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(server.url("/gzip"), policy=loopback_policy(max_bytes=1024 * 1024))
    assert info.value.rule == "content-encoding"


def test_a_body_dripping_one_byte_a_second_is_cut_off_at_the_deadline(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(server.url("/drip"), policy=loopback_policy(read_timeout=1.5))
    assert info.value.rule == "timeout"
    assert "1.5s" in str(info.value)


async def test_headers_dripping_one_byte_a_second_are_cut_off_at_the_deadline(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        await aresolve(server.url("/drip?phase=headers"), policy=loopback_policy(read_timeout=1.5))
    assert info.value.rule == "timeout"


def test_oversized_base64_and_data_urls_are_refused() -> None:
    payload = base64.b64encode(media("image.png") * 10).decode()
    policy = AttachmentPolicy(max_bytes=1024)
    for source in (payload, f"data:image/png;base64,{payload}"):
        with pytest.raises(AttachmentError) as info:
            resolve(source, policy=policy)
        assert info.value.rule == "too-large"
        assert payload[:40] not in str(info.value)


def test_corpus_size() -> None:
    """Issue 6 asks for at least 30 hostile sources; count the distinct ones here."""
    server_cases = len(REDIRECT_TARGETS) + 1 + 1 + 1 + 1 + 1 + 2 + 2 + 1  # chain, loop, big, endless, gzip, drips, b64, own
    assert len(NO_SERVER) + server_cases >= 30
