"""Downloads from the loopback media server (allow-listed here only): real files arrive intact
and typed, redirects are followed within the limit, the connection goes to the address that
was checked (rebinding), and TLS is verified for the host name while connecting to the IP."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from cloverleaf._errors import AttachmentError
from cloverleaf._types import Attachment
from cloverleaf.attachments import AttachmentPolicy, aresolve, resolve

from .conftest import MapResolver, MediaServer, loopback_policy, media

FILES = [
    ("image.png", "image", "image/png"),
    ("image.jpg", "image", "image/jpeg"),
    ("document.pdf", "pdf", "application/pdf"),
    ("audio.wav", "audio", "audio/wav"),
    ("audio.mp3", "audio", "audio/mpeg"),
    ("audio-id3.mp3", "audio", "audio/mpeg"),
    ("audio.flac", "audio", "audio/flac"),
    ("audio.ogg", "audio", "audio/ogg"),
]


@pytest.mark.parametrize(("name", "kind", "media_type"), FILES)
def test_real_files_download_intact_and_typed(server: MediaServer, name: str, kind: str, media_type: str) -> None:
    att = resolve(server.url(f"/media/{name}"), policy=loopback_policy())
    assert att.data == media(name)
    assert (att.type, att.media_type, att.fetch, att.filename) == (kind, media_type, "local", name)
    assert att.url is None and att.resolved
    assert server.paths() == [f"/media/{name}"]


@pytest.mark.parametrize(("name", "kind", "media_type"), FILES[:4])
async def test_real_files_download_async(server: MediaServer, name: str, kind: str, media_type: str) -> None:
    att = await aresolve(Attachment(source=server.url(f"/media/{name}"), type=kind), policy=loopback_policy())
    assert att.data == media(name)
    assert (att.type, att.media_type) == (kind, media_type)


def test_magic_bytes_beat_a_lying_content_type(server: MediaServer) -> None:
    att = resolve(server.url("/media/image.png?ct=text/html"), policy=loopback_policy())
    assert att.media_type == "image/png"


def test_a_web_page_is_not_an_attachment(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(server.url("/html"), policy=loopback_policy())
    assert info.value.rule == "unknown-type"
    assert "<html>" not in str(info.value)


def test_claimed_type_contradicted_by_downloaded_bytes(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(server.url("/media/document.pdf"), policy=loopback_policy(), type="image")
    assert info.value.rule == "type-mismatch"
    assert "pdf" in str(info.value)


def test_error_status(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(server.url("/status/404"), policy=loopback_policy())
    assert (info.value.rule, info.value.detail) == ("http-status", "404")


def test_connection_refused_is_an_attachment_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(AttachmentError) as info:
        resolve(f"http://127.0.0.1:{port}/x.png", policy=loopback_policy())
    assert info.value.rule == "connect"


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_five_redirects_are_followed(server: MediaServer, mode: str) -> None:
    url = server.url("/chain/5")
    att = resolve(url, policy=loopback_policy()) if mode == "sync" else await aresolve(url, policy=loopback_policy())
    assert att.data == media("image.png")
    assert server.paths() == [f"/chain/{n}" for n in range(5, -1, -1)]


def test_six_redirects_are_too_many(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(server.url("/chain/6"), policy=loopback_policy())
    assert info.value.rule == "too-many-redirects"
    assert len(server.seen) == 6


def test_max_redirects_zero_refuses_any_redirect(server: MediaServer) -> None:
    with pytest.raises(AttachmentError) as info:
        resolve(server.url("/chain/1"), policy=loopback_policy(max_redirects=0))
    assert info.value.rule == "too-many-redirects"


def test_redirect_to_an_allowed_name_keeps_its_host_header(server: MediaServer) -> None:
    resolver = MapResolver({"cdn.test": ["127.0.0.1"]})
    target = f"http://cdn.test:{server.port}/media/image.jpg"
    att = resolve(server.url(f"/redirect?to={target}"), policy=loopback_policy(resolver=resolver))
    assert att.media_type == "image/jpeg"
    assert [s.host for s in server.seen] == [f"127.0.0.1:{server.port}", f"cdn.test:{server.port}"]


# --------------------------------------------------------------------------- pinning and rebinding


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_dns_rebinding_connects_to_the_checked_address(server: MediaServer, mode: str, network_guard: Any) -> None:
    """The resolver answers 127.0.0.1 (allow-listed) first and 10.0.0.1 after: the download
    uses the first, checked, answer, and nothing looks the name up a second time (the guard
    would flag a system lookup of ``rebind.test``; the resolver counts its own calls)."""
    resolver = MapResolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    url = f"http://rebind.test:{server.port}/media/image.png"
    policy = loopback_policy(resolver=resolver)
    att = resolve(url, policy=policy) if mode == "sync" else await aresolve(url, policy=policy)
    assert att.data == media("image.png")
    assert resolver.calls == [("rebind.test", server.port)]
    assert [(s.path, s.host) for s in server.seen] == [("/media/image.png", f"rebind.test:{server.port}")]
    assert {c[0] for c in network_guard.connects} == {"127.0.0.1"}


def test_each_redirect_hop_is_resolved_and_checked_again(server: MediaServer) -> None:
    """A redirect back to the same (rebinding) name is looked up again; the private second
    answer is refused and never contacted."""
    resolver = MapResolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    url = f"http://rebind.test:{server.port}/redirect?to=/media/image.png"
    with pytest.raises(AttachmentError) as info:
        resolve(url, policy=loopback_policy(resolver=resolver))
    assert info.value.rule == "private-address" and "10.0.0.1" in str(info.value)
    assert len(resolver.calls) == 2
    assert server.paths() == ["/redirect?to=/media/image.png"]


def test_allow_hosts_admits_a_named_internal_source(server: MediaServer) -> None:
    resolver = MapResolver({"assets.internal": ["127.0.0.1"]})
    policy = AttachmentPolicy(allow_hosts=("Assets.Internal",), resolver=resolver)
    att = resolve(f"http://assets.internal:{server.port}/media/image.png", policy=policy)
    assert att.data == media("image.png")
    # ...but only that name: another name on the same address is still refused.
    resolver.table["other.test"] = ["127.0.0.1"]
    with pytest.raises(AttachmentError):
        resolve(f"http://other.test:{server.port}/media/image.png", policy=policy)


async def test_sync_resolve_works_inside_a_running_event_loop(server: MediaServer) -> None:
    att = resolve(server.url("/media/image.png"), policy=loopback_policy())
    assert att.data == media("image.png")


# --------------------------------------------------------------------------- fetch="provider"


def test_provider_fetch_checks_the_scheme_only_and_sends_nothing(server: MediaServer, network_guard: Any) -> None:
    att = resolve("https://example.com/photos/cat.JPG", fetch="provider")
    assert (att.url, att.data, att.type, att.media_type, att.fetch) == (
        "https://example.com/photos/cat.JPG", None, "image", "image/jpeg", "provider")
    assert att.filename == "cat.JPG"
    assert network_guard.connects == [] and server.seen == []
    with pytest.raises(AttachmentError) as info:
        resolve("ftp://example.com/cat.jpg", fetch="provider")
    assert info.value.rule == "scheme"


def test_provider_fetch_needs_a_type_when_the_url_does_not_say() -> None:
    with pytest.raises(AttachmentError) as info:
        resolve("https://example.com/render?id=7", fetch="provider")
    assert info.value.rule == "unknown-type"
    att = resolve("https://example.com/render?id=7", fetch="provider", type="pdf")
    assert (att.type, att.media_type) == ("pdf", None)
    with pytest.raises(AttachmentError) as info:
        resolve("https://example.com/doc.pdf", fetch="provider", type="image")
    assert info.value.rule == "type-mismatch"


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_server() -> Any:
    """An HTTPS media server on 127.0.0.1 whose certificate names only ``pics.test``."""
    import ssl
    import threading

    from .tls_certs import make_ca_and_leaf

    ca_pem, cert_pem, key_pem, tmp = make_ca_and_leaf("pics.test")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_pem, key_pem)
    seen_sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    server = MediaServer()
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=ca_pem)
    yield server, client_ctx, seen_sni
    server.stopping.set()
    server.shutdown()
    server.server_close()
    tmp.cleanup()


def test_https_connects_to_the_pinned_ip_and_verifies_the_host_name(tls_server: Any) -> None:
    server, client_ctx, seen_sni = tls_server
    server.seen.clear()
    seen_sni.clear()
    resolver = MapResolver({"pics.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    policy = loopback_policy(resolver=resolver, verify=client_ctx)
    att = resolve(f"https://pics.test:{server.port}/media/image.png", policy=policy)
    assert att.data == media("image.png")
    assert seen_sni == ["pics.test"]
    assert [s.host for s in server.seen] == [f"pics.test:{server.port}"]
    # The same address under a name the certificate does not cover: verification fails.
    with pytest.raises(AttachmentError) as info:
        resolve(f"https://other.test:{server.port}/media/image.png", policy=policy)
    assert info.value.rule == "tls"
    assert len(server.seen) == 1


def test_tls_verification_cannot_be_switched_off(tls_server: Any) -> None:
    server, _, _ = tls_server
    with pytest.raises(AttachmentError) as info:
        resolve(f"https://127.0.0.1:{server.port}/media/image.png", policy=loopback_policy(verify=False))
    assert info.value.rule == "tls"
