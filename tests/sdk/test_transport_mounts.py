"""Mounts, as httpx ``mounts`` work: a URL pattern sends matching requests to an in-process
httpx transport instead of the network. The engine mounts the fake provider this way (the
transport knows no provider), and tests mount a ``MockTransport`` as a provider-side mock."""

from __future__ import annotations

import httpx
import pytest

from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import ConfigError
from cloverleaf._http import HttpRequest
from cloverleaf.transport import RetryPolicy, Transport

from .upstream import Reply, Upstream


def answering(text: str) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, json={"from": text, "url": str(request.url)}))


def test_a_mounted_host_is_answered_in_process_and_others_go_to_the_network(upstream: Upstream) -> None:
    upstream.queue(Reply(200, body=b'{"from": "network"}'))
    t = Transport(mounts={"http://mock.test": answering("mount")}, retry=RetryPolicy(max_retries=0))
    assert t.send(HttpRequest("GET", "http://mock.test/v1/x")).json()["from"] == "mount"
    assert t.send(HttpRequest("GET", f"{upstream.url}/v1/x")).json() == {"from": "network"}
    t.close()


async def test_mounts_serve_async_calls_and_streams_too() -> None:
    t = Transport(mounts={"http://mock.test": answering("mount")})
    assert (await t.asend(HttpRequest("POST", "http://mock.test/v1", body=b"{}"))).json()["from"] == "mount"
    async with t.astream(HttpRequest("POST", "http://mock.test/v1", body=b"{}", stream=True)) as handle:
        assert b"mount" in b"".join([c async for c in handle.chunks()])
    await t.aclose()


def test_the_most_specific_pattern_wins() -> None:
    t = Transport(mounts={"all://": answering("all"), "http://": answering("scheme"),
                          "http://mock.test": answering("host"), "http://mock.test:8080": answering("port")})
    got = {url: t.send(HttpRequest("GET", url)).json()["from"]
           for url in ("http://mock.test:8080/a", "http://mock.test/a", "http://other.test/a", "https://other.test/a")}
    assert got == {"http://mock.test:8080/a": "port", "http://mock.test/a": "host", "http://other.test/a": "scheme",
                   "https://other.test/a": "all"}
    t.close()


def test_a_factory_is_built_on_first_use_only() -> None:
    built: list[int] = []

    def factory() -> httpx.MockTransport:
        built.append(1)
        return answering("lazy")

    t = Transport(mounts={"http://lazy.test": factory})
    assert built == []
    t.send(HttpRequest("GET", "http://lazy.test/"))
    t.send(HttpRequest("GET", "http://lazy.test/"))
    assert built == [1] and t.mounted("http://lazy.test") is t.mounted("http://lazy.test/")
    t.close()


def test_a_bad_pattern_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="mount pattern"):
        Transport(mounts={"mock.test": answering("x")})


def test_the_engine_mounts_the_fake_provider_and_builds_it_only_when_used() -> None:
    from cloverleaf.providers.fake import FAKE_ORIGIN

    engine = Engine(Settings(env={}))

    mount = next(m for m in engine.transport._mounts if m.target is not None)
    assert callable(mount.target) and not hasattr(mount.target, "handle_request")  # still the factory
    from cloverleaf._types import ChatRequest, Message

    target = engine.resolve("fake/echo")
    assert engine.chat(target, ChatRequest(model="echo", messages=[Message.user("hi")])).content == "hi"
    assert engine.transport.mounted(FAKE_ORIGIN) is engine.fake and len(engine.fake.requests) == 1
    engine.close()
