"""A local-only call checks where each connection really went, not only what DNS said before.

The locality of a target is decided from its name's DNS answer (cached for a minute), but the
HTTP client resolves the name again when it connects: a name whose answer changed in between
(DNS rebinding, a record moved to the cloud) would take a local-only prompt off the network.
So every transport checks the address a local-only call's connection reached, once connected
and before writing a byte: h1 on every connection it hands out (pooled ones too), httpx (sync
calls, and async ones when h1 is not the client) through a pool of its own, no proxy.

Every socket here is on loopback, so the test stands the rebinding up with the guard's two
seams: its resolver says ``localhost`` is 192.168.1.20 (a LAN address: the target passes),
and its address classifier calls 127.0.0.1, where the connection lands, public. The upstream
counts connections and body bytes: a refused call leaves zero bytes and no request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloverleaf
from cloverleaf import Client, PrivacyViolation
from cloverleaf._config import ModelEntry, Settings
from cloverleaf._privacy import PrivacyGuard

from ..counting_upstream import CountingUpstream

ENV = {"OPENAI_API_KEY": "sk-test-peer"}


@pytest.fixture
def lan() -> Iterator[CountingUpstream]:
    u = CountingUpstream("lan")
    yield u
    u.close()


def settings_for(tmp_path: Path, lan: CountingUpstream, **kw: Any) -> Settings:
    base: dict[str, Any] = dict(
        env=ENV, max_retries=0, timeout=5.0,
        models=[ModelEntry(name="lan-vllm", identifier="m", provider="vllm",
                           base_url=f"http://localhost:{lan.port}/v1")],
        routes={"private": {"targets": ["lan-vllm"], "privacy": "local-only"}},
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
    )
    base.update(kw)
    return Settings(**base)


def rebind(guard: PrivacyGuard, *, landed_public: bool = True) -> None:
    """The name's answer says LAN; the connection lands on 127.0.0.1, called public."""
    guard.resolver = lambda host, port: ["192.168.1.20"]
    if landed_public:
        real = guard.classify
        guard.classify = lambda address: None if str(address) == "127.0.0.1" else real(address)


def assert_refused(info: pytest.ExceptionInfo[PrivacyViolation], lan: CountingUpstream) -> None:
    err = info.value
    assert err.policy == "local-only"
    [(where, reason)] = err.targets
    assert f"localhost:{lan.port}" in where
    assert "127.0.0.1" in reason and "DNS rebinding" in reason and "nothing was sent" in reason
    assert lan.bytes_received == 0 and lan.paths == []


def test_a_direct_sync_call_and_stream_are_refused_when_the_connection_lands_elsewhere(
        tmp_path: Path, lan: CountingUpstream) -> None:
    with Client(settings_for(tmp_path, lan)) as client:
        rebind(client.engine.privacy)
        with pytest.raises(PrivacyViolation) as info:
            client.chat("lan-vllm", "secret", privacy="local-only")
        assert_refused(info, lan)
        with pytest.raises(PrivacyViolation) as info:
            list(client.stream("lan-vllm", "secret", privacy="local-only"))
        assert_refused(info, lan)
        assert lan.connections >= 1      # it did connect: the check is on the connection itself
        # the same target without the policy is called as usual
        assert client.chat("lan-vllm", "hello").content == "answered by lan"


@pytest.mark.parametrize("http_client", ["h1", "httpx", "aiohttp"])
async def test_async_calls_streams_and_embeddings_are_refused_on_every_client(
        tmp_path: Path, lan: CountingUpstream, http_client: str) -> None:
    async with cloverleaf.AsyncClient(settings_for(tmp_path, lan, http_client=http_client)) as client:
        rebind(client.engine.privacy)
        with pytest.raises(PrivacyViolation) as info:
            await client.chat("lan-vllm", "secret", privacy="local-only")
        assert_refused(info, lan)
        with pytest.raises(PrivacyViolation) as info:
            async for _ in client.stream("lan-vllm", "secret", privacy="local-only"):
                pass
        assert_refused(info, lan)
        with pytest.raises(PrivacyViolation) as info:
            await client.embed("lan-vllm", "secret", privacy="local-only")
        assert_refused(info, lan)


async def test_a_pooled_connection_opened_by_another_call_is_checked_too(tmp_path: Path,
                                                                          lan: CountingUpstream) -> None:
    """h1 pools by host: a connection opened by a call that may go anywhere, then reused by a
    local-only one, is checked when it is handed out, not only when it was opened."""
    async with cloverleaf.AsyncClient(settings_for(tmp_path, lan)) as client:
        rebind(client.engine.privacy)
        assert (await client.chat("lan-vllm", "hello")).content == "answered by lan"
        sent = lan.bytes_received
        with pytest.raises(PrivacyViolation):
            await client.chat("lan-vllm", "secret", privacy="local-only")
        assert lan.bytes_received == sent and lan.connections == 1
        assert (await client.chat("lan-vllm", "hello again")).content == "answered by lan"   # still usable


def test_through_the_gateway_the_refusal_is_the_calls_record(tmp_path: Path, lan: CountingUpstream) -> None:
    with Client(settings_for(tmp_path, lan)) as client:
        rebind(client.engine.privacy)
        with pytest.raises(PrivacyViolation) as info:
            client.chat("private", "secret")
        assert_refused(info, lan)
        client.gateway.store.flush()
        [record] = client.gateway.store.recent_calls(limit=1)
        assert record.status == "error" and record.error_type == "PrivacyViolation"


async def test_when_the_connection_is_local_local_only_calls_go_through(tmp_path: Path,
                                                                       lan: CountingUpstream) -> None:
    """The control: the same name, answering LAN and landing on loopback (local), on each path."""
    settings = settings_for(tmp_path, lan)
    with Client(settings) as client:
        rebind(client.engine.privacy, landed_public=False)
        assert client.chat("lan-vllm", "secret", privacy="local-only").content == "answered by lan"
        assert "".join(e.text or "" for e in client.stream("private", "secret") if e.type == "text") == \
            "answered by lan"
    for http_client in ("h1", "httpx"):
        async with cloverleaf.AsyncClient(settings_for(tmp_path, lan, http_client=http_client)) as aclient:
            rebind(aclient.engine.privacy, landed_public=False)
            for _ in range(2):   # the second reuses the checked connection
                assert (await aclient.chat("private", "secret")).content == "answered by lan"
    assert lan.bytes_received > 0


def test_a_local_only_call_takes_no_proxy(tmp_path: Path, lan: CountingUpstream,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy is another host that would see the prompt: local-only calls go straight to
    the local server (the proxy here does not exist, so using it would fail)."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with Client(settings_for(tmp_path, lan)) as client:
        rebind(client.engine.privacy, landed_public=False)
        assert client.chat("lan-vllm", "secret", privacy="local-only").content == "answered by lan"


def test_the_server_answers_the_refusal_as_a_403_and_sends_nothing(lan: CountingUpstream) -> None:
    """Through the live server (h1 under uvicorn's server, the after-answer bookkeeping): the
    connection check's refusal is the request's 403, and the upstream got no byte."""
    from ..server.conftest import MASTER, settings, start_live, stop_live

    live = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER},
                               models=[ModelEntry(name="lan-vllm", identifier="m", provider="vllm",
                                                  base_url=f"http://localhost:{lan.port}/v1")]))
    try:
        rebind(live.state.backend.engine.privacy)
        with live.http(MASTER) as http:
            r = http.post("/v1/chat/completions", json={"model": "lan-vllm", "messages": [
                {"role": "user", "content": "secret"}]}, headers={"x-cloverleaf-privacy": "local-only"})
            assert r.status_code == 403, r.text
            error = r.json()["error"]
            assert error["code"] == "privacy_violation" and "DNS rebinding" in error["message"]
            assert lan.bytes_received == 0 and lan.paths == []
            r = http.post("/v1/chat/completions", json={"model": "lan-vllm", "messages": [
                {"role": "user", "content": "hello"}]})
            assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "answered by lan"
    finally:
        stop_live(live)


SEMANTIC = {"mode": "semantic", "embedding_model": "lan-vllm", "similarity": 0.9, "deterministic_only": False}


def test_a_semantic_cache_lookup_embeds_a_local_only_prompt_over_a_checked_connection(
        tmp_path: Path, lan: CountingUpstream) -> None:
    """The semantic cache's lookup sends the prompt to its embedding model: for a local-only
    call that request is checked where its connection landed, like the call's own. Refused
    there, the call skips the cache (no lookup, no store) and is answered as usual; the
    embedder got no byte. Without the policy the same embedder is used."""
    with Client(settings_for(tmp_path, lan, cache=SEMANTIC, routes={"echo": {"targets": ["fake/echo"]}})) as client:
        rebind(client.engine.privacy)
        for _ in range(2):
            resp = client.chat("echo", "the diagnosis of patient 4711", privacy="local-only")
            assert resp.content == "the diagnosis of patient 4711" and "cache" not in resp.metadata.extra
        assert lan.bytes_received == 0 and lan.paths == []
        assert client.chat("echo", "a public note").metadata.extra.get("cache") == "miss"
        assert lan.paths == ["/v1/embeddings"]


def test_the_embedding_models_locality_is_read_per_call(tmp_path: Path, lan: CountingUpstream) -> None:
    """Whether a semantic cache may embed a local-only prompt follows the embedding model's
    locality as it is now (the guard keeps a DNS answer for a minute), not as it was at the
    process's first such call: a name that moved to a public address stops the cache."""
    with Client(settings_for(tmp_path, lan, cache=SEMANTIC, routes={"echo": {"targets": ["fake/echo"]}})) as client:
        guard = client.engine.privacy
        rebind(guard, landed_public=False)          # LAN by name, loopback by connection: local
        client.chat("echo", "my diary", privacy="local-only")
        assert lan.paths == ["/v1/embeddings"]      # the cache was used: the prompt embedded locally
        guard.resolver = lambda host, port: ["93.184.216.34"]   # the name moved to the cloud
        guard.forget()                              # ... and its minute is up
        resp = client.chat("echo", "my diary", privacy="local-only")
        assert resp.content == "my diary" and "cache" not in resp.metadata.extra
        assert lan.paths == ["/v1/embeddings"]      # no second embedding request
