"""``cloverleaf image`` holds a provider's image link to the address each connection reaches,
not only to the name's DNS answer checked before it.

The link's host was judged by one lookup and the HTTP client looked the name up again to
connect, so a name answering a public address at the check and ``127.0.0.1`` at the connection
(DNS rebinding) steered the download into this machine's network. Every socket here stays on
loopback: ``socket.getaddrinfo`` is replaced by a resolver that answers a name differently on
its second lookup (the check is the first, the connection the second), and for the rules that
need a connection *outside*, 127.0.0.2 stands in for a public address (the privacy guard's
address classifier calls it public).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf.cli import main
from tests.loopback import Answer, LoopbackServer

from .test_cli import clean_env  # noqa: F401 - the same clean environment, autouse
from .test_cli_media import _answer_a_link

PNG = b"\x89PNG\r\n\x1a\nfrom wherever the name led"
#: What the stand-in image hosts answer every request with.
IMAGE = Answer(200, PNG, {"content-type": "image/png"})


class Rebinding:
    """``socket.getaddrinfo`` answering each name of ``answers`` with its n-th address on the
    n-th lookup (the last one from then on); any other name as the system does."""

    def __init__(self, real: Any, answers: dict[str, list[str]]) -> None:
        self.real = real
        self.answers = answers
        self.lookups: dict[str, int] = {}

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in self.answers:
            return self.real(host, port, *args, **kwargs)
        n = self.lookups[host] = self.lookups.get(host, 0) + 1
        address = self.answers[host][min(n, len(self.answers[host])) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]


@pytest.fixture
def outside_provider(tmp_path: Any, upstream: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A config whose provider ``hosted`` is outside by its name's answer (``localhost`` made
    public for the check; its socket stays on loopback)."""
    from cloverleaf import _privacy

    real = _privacy._system_resolver
    monkeypatch.setattr(_privacy, "_system_resolver",
                        lambda host, port: ["8.8.8.8"] if host == "localhost" else real(host, port))
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.hosted]\nkind = "openai"\nbase_url = "http://localhost:{upstream.port}/v1"\n')
    return str(config)


@pytest.fixture
def cdn(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """An HTTPS image host on 127.0.0.1 with a certificate for ``cdn.rebind.test``, trusted
    through ``SSL_CERT_FILE``: a connection that reaches it is served, so a download the rule
    lets through really writes the file."""
    import ssl

    from ..attachments.tls_certs import make_ca_and_leaf

    ca_pem, cert_pem, key_pem, folder = make_ca_and_leaf("cdn.rebind.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem, key_pem)
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem)
    with folder, LoopbackServer(lambda request: IMAGE, ssl_context=context) as server:
        yield server


def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


def test_a_link_whose_name_turns_into_this_machine_at_connect_is_not_fetched(
        tmp_path: Any, upstream: Any, outside_provider: str, cdn: LoopbackServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A hosted provider's https link to a name that is public when checked and 127.0.0.1 when
    connected to: the image was fetched from this machine. Now the connection's address is
    checked before a byte is written, and the download refused saying why."""
    _no_proxy(monkeypatch)
    resolver = Rebinding(socket.getaddrinfo, {"cdn.rebind.test": ["93.184.216.34", "127.0.0.1"]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    _answer_a_link(upstream, f"https://cdn.rebind.test:{cdn.port}/cat.png?sig=s3cret")
    out = tmp_path / "cat.png"
    with pytest.raises(SystemExit, match=r"was checked as outside this machine's network, and the connection "
                                         r"reached 127\.0\.0\.1 .*DNS rebinding.*nothing was sent; fetch it "
                                         r"yourself") as refused:
        main(["--config", outside_provider, "image", "a cat", "-m", "hosted/gpt-image-1", "-o", str(out)])
    assert resolver.lookups["cdn.rebind.test"] >= 2   # the check's answer, then the connection's
    assert cdn.requests == [] and not out.exists()
    assert "s3cret" not in str(refused.value).split("fetch it yourself")[0]   # the query is the link's own


def test_behind_a_proxy_an_outside_link_goes_through_the_proxy(
        tmp_path: Any, upstream: Any, outside_provider: str, cdn: LoopbackServer,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With HTTPS_PROXY set, a link checked as outside is fetched through the proxy, as every
    other request is (the connection check would see the proxy's address, and going around it
    fails where only the proxy reaches the internet). The proxy looks the name up and connects:
    the rule against links into this machine's network holds by the name check alone (README)."""
    from ..gateway.http_proxy import ForwardProxy

    _no_proxy(monkeypatch)
    proxy = ForwardProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setattr(socket, "getaddrinfo",
                            Rebinding(socket.getaddrinfo, {"cdn.rebind.test": ["93.184.216.34", "127.0.0.1"]}))
        _answer_a_link(upstream, f"https://cdn.rebind.test:{cdn.port}/cat.png")
        out = tmp_path / "cat.png"
        assert main(["--config", outside_provider, "image", "a cat", "-m", "hosted/gpt-image-1", "-o", str(out)]) == 0
    finally:
        proxy.close()
    assert out.read_bytes() == PNG and f"wrote {out}" in capsys.readouterr().out
    assert [(method, target) for method, target, _ in proxy.seen] == [("CONNECT", f"cdn.rebind.test:{cdn.port}")]


@pytest.mark.parametrize("flags", [["--local-only"], []], ids=["local-only", "plain-http"])
def test_a_local_link_whose_name_turns_outside_at_connect_is_not_fetched(
        tmp_path: Any, upstream: Any, monkeypatch: pytest.MonkeyPatch, flags: list[str]) -> None:
    """A local server's link may be plain http, and a local-only call's may be nothing but local,
    because the name is on this machine's network: one that answers a local address at the check
    and an outside one at the connection took the request outside (in clear text, or out of a
    local-only call). Now that connection is refused before a byte is written."""
    from cloverleaf import _privacy

    _no_proxy(monkeypatch)
    real = _privacy._default_classify
    monkeypatch.setattr(_privacy, "_default_classify", lambda ip: None if str(ip) == "127.0.0.2" else real(ip))
    monkeypatch.setattr(socket, "getaddrinfo",
                        Rebinding(socket.getaddrinfo, {"lan.rebind.test": ["127.0.0.1", "127.0.0.2"]}))
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n'
                      '[[models]]\nname = "lab-image"\nprovider = "mylab"\nidentifier = "gpt-image-1"\n'
                      'is_public = false\n')
    out = tmp_path / "cat.png"
    with LoopbackServer(lambda request: IMAGE, host="127.0.0.2") as outside:
        _answer_a_link(upstream, f"http://lan.rebind.test:{outside.port}/cat.png")
        with pytest.raises(SystemExit, match=r"the connection reached 127\.0\.0\.2\b.*changed in between.*nothing "
                                             r"was sent.*fetch it yourself"):
            main(["--config", str(config), "image", "a cat", "-m", "lab-image", *flags, "-o", str(out)])
        assert outside.requests == [] and not out.exists()


def test_a_local_link_goes_straight_to_its_host_not_through_a_proxy(
        tmp_path: Any, upstream: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A link that must be local (plain http from a local server) is fetched straight from the
    host, its connection checked, as local-only calls are: a proxy is another host, and one
    outside cannot reach this machine's network anyway. (The proxy named here does not exist,
    so going through it would fail; the provider's own address is in NO_PROXY.)"""
    from .upstream import Reply

    _no_proxy(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:50849")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", Rebinding(socket.getaddrinfo, {"lan.rebind.test": ["127.0.0.1"]}))
    config = tmp_path / "c.toml"
    config.write_text(f'[providers.mylab]\nkind = "openai"\nbase_url = "{upstream.url}/v1"\n')
    _answer_a_link(upstream, f"http://lan.rebind.test:{upstream.port}/files/cat.png")
    upstream.queue(Reply(headers={"content-type": "image/png"}, body=PNG))
    out = tmp_path / "cat.png"
    assert main(["--config", str(config), "image", "a cat", "-m", "mylab/gpt-image-1", "-o", str(out)]) == 0
    assert out.read_bytes() == PNG and upstream.seen[-1].path == "/files/cat.png"
