"""Keeps ``bench/`` from rotting: the mock upstream answers like OpenAI, and the load
generator reads its answers. No timing is asserted here (the benchmark itself never runs
in the test suite); a 5 ms delay is used only so the delayed paths are exercised."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from bench import loadgen, mock_upstream

CHAT = {"model": "mock-model", "messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    """The mock on a free port. Whatever a test connected to it must be closed by the end: on
    Python 3.12+ ``wait_closed()`` waits for every connection still open, so a client that
    leaves one to the garbage collector (the load generator did) hangs the caller there; the
    check makes that visible on 3.11 too, where ``wait_closed()`` does not wait."""
    connections: list[mock_upstream.MockProtocol] = []

    def tracked() -> mock_upstream.MockProtocol:
        connections.append(mock_upstream.MockProtocol())
        return connections[-1]

    server = await asyncio.get_running_loop().create_server(tracked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
        for _ in range(500):  # a client's close reaches the server a few loop turns later
            if all(c.closed for c in connections):
                break
            await asyncio.sleep(0.01)
        assert [c for c in connections if not c.closed] == [], "a client left a connection to the mock open"
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


def sse_payloads(body: bytes) -> list[str]:
    return [line[len("data: "):] for line in body.decode().split("\n") if line.startswith("data: ")]


@pytest.mark.parametrize("prefix", ["", "/d5"])
async def test_chat_completion_json(base_url: str, prefix: str) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{base_url}{prefix}/v1/chat/completions", json=CHAT)
        again = await client.post(f"{base_url}{prefix}/v1/chat/completions", json=CHAT)  # keep-alive reuse
    assert r.status_code == 200 and again.status_code == 200
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": mock_upstream.REPLY}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}


@pytest.mark.parametrize("include_usage", [False, True])
async def test_stream_has_64_chunks_then_done(base_url: str, include_usage: bool) -> None:
    body = {**CHAT, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{base_url}/d5/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    payloads = sse_payloads(r.content)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    content = [c for c in chunks if c["choices"]]
    assert len(content) == mock_upstream.STREAM_CHUNKS == 64
    assert "".join(c["choices"][0]["delta"]["content"] for c in content) == "".join(f"tok{i} " for i in range(64))
    assert content[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in content].count("stop") == 1
    assert content[-1]["choices"][0]["finish_reason"] == "stop"
    usage = [c["usage"] for c in chunks if not c["choices"]]
    assert usage == ([{"prompt_tokens": 9, "completion_tokens": 64, "total_tokens": 73}] if include_usage else [])


async def test_cloverleaf_openai_adapter_decodes_the_mock_stream(base_url: str) -> None:
    """The stream the benchmark sends through cloverleaf is one its OpenAI adapter accepts."""
    from cloverleaf._types import ChatRequest, Message
    from cloverleaf.providers.registry import get_adapter, get_spec

    async with httpx.AsyncClient() as client:
        r = await client.post(f"{base_url}/v1/chat/completions",
                              json={**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    adapter = get_adapter(get_spec("openai"))
    req = ChatRequest(model="mock-model", messages=[Message.user("Say hello.")], stream=True)
    decoder = adapter.stream_decoder(req)
    events = decoder.feed(r.content) + decoder.close()
    text = "".join(ev.text or "" for ev in events if ev.type == "text")
    assert text == "".join(f"tok{i} " for i in range(64))
    done = [ev for ev in events if ev.type == "done"]
    assert len(done) == 1 and done[0].finish_reason == "stop"
    assert [ev.usage.output_tokens for ev in events if ev.type == "usage"] == [64]


async def test_unknown_path_is_404(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{base_url}/v2/nothing", json=CHAT)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_load_generator_reads_answers_and_streams(base_url: str) -> None:
    plain = await loadgen.run(f"{base_url}/v1/chat/completions", "mock-model", concurrency=2, duration=None,
                              warmup=0.0, per_worker=3, warm_count=1)
    assert plain["count"] == 6 and plain["errors"] == 0
    assert plain["completed_all"] == 8
    assert plain["p50_ms"] is not None and plain["ttft_p50_ms"] is None
    streamed = await loadgen.run(f"{base_url}/v1/chat/completions", "mock-model", concurrency=2, duration=None,
                                 warmup=0.0, per_worker=2, warm_count=0, stream=True)
    assert streamed["count"] == 4 and streamed["errors"] == 0
    assert streamed["ttft_p50_ms"] is not None
    missing = await loadgen.run(f"{base_url}/v2/nothing", "mock-model", concurrency=1, duration=None,
                                warmup=0.0, per_worker=2, warm_count=0)
    assert missing["count"] == 0 and missing["errors"] == 2 and missing["first_error"] == "HTTP 404"


async def test_burst_mode_checks_every_stream_is_whole(base_url: str) -> None:
    """The burst scenario: streams started over a ramp, each counted intact only with all 64
    content chunks; extra headers (Portkey's) reach the target."""
    url = f"{base_url}/d5/v1/chat/completions"
    burst = await loadgen.run(url, "mock-model", concurrency=4, duration=None, warmup=0.0, per_worker=1,
                              warm_count=0, stream=True, ramp=0.05, expect_chunks=64, headers=["x-bench: 1"])
    assert burst["count"] == 4 and burst["errors"] == 0 and burst["ttft_p50_ms"] is not None
    short = await loadgen.run(url, "mock-model", concurrency=2, duration=None, warmup=0.0, per_worker=1,
                              warm_count=0, stream=True, expect_chunks=65)
    assert short["count"] == 0 and short["errors"] == 2
    assert short["first_error"] == "stream with 64 of 65 content chunks"


async def test_the_floor_proxy_relays_answers_and_streams_unchanged(base_url: str) -> None:
    """``bench/floor_proxy.py`` is the yardstick beside cloverleaf: it must relay what the mock
    says, whole, or its figures mean nothing."""
    from bench import floor_proxy

    server, pool = await floor_proxy.start(0, base_url)
    floor = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with httpx.AsyncClient() as client:
            direct = await client.post(f"{base_url}/d5/v1/chat/completions", json=CHAT)
            relayed = [await client.post(f"{floor}/d5/v1/chat/completions", json=CHAT) for _ in range(2)]
            stream = await client.post(f"{floor}/d5/v1/chat/completions", json={**CHAT, "stream": True})
    finally:
        server.close()
        await server.wait_closed()
        pool.close()  # else the mock's wait_closed() in base_url's teardown waits for them forever
    assert [r.status_code for r in relayed] == [200, 200]
    assert relayed[0].json()["choices"] == relayed[1].json()["choices"] == direct.json()["choices"]
    assert stream.headers["content-type"] == "text/event-stream"
    payloads = sse_payloads(stream.content)
    assert payloads[-1] == "[DONE]" and len(payloads) == mock_upstream.STREAM_CHUNKS + 1


def test_span_cost_measures_cloverleafs_spans_and_names_the_sdk_row(capsys: pytest.CaptureFixture[str]) -> None:
    """``bench/span_cost.py`` end to end on a few calls: a figure for cloverleaf's row, and the
    SDK row measured or saying what to install."""
    from bench import span_cost

    assert span_cost.main(["--calls", "20", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert float(rows["cloverleaf"].split()[1]) > 0
    assert "otel-sdk" in rows and ("skipped" in rows["otel-sdk"] or float(rows["otel-sdk"].split()[1]) > 0)
