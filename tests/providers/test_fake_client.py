"""The fake through the whole SDK pipeline: Client -> Engine -> Transport -> FakeUpstream.

Retries, timeouts, stream decoding and error mapping all run for real here, offline; each
Client owns its own FakeUpstream (``client.fake``), so tests never share state.
"""

from __future__ import annotations

import pytest

from cloverleaf import AsyncClient, Client
from cloverleaf._errors import (
    MalformedResponseError,
    RateLimitError,
    ServerError,
    TimeoutError,
    TransportError,
)


@pytest.fixture
def client():
    with Client() as c:
        yield c


def test_echo_and_the_client_owns_its_upstream(client):
    assert client.chat("fake/echo", "hello").content == "hello"
    with Client() as other:
        other.chat("fake/echo", "elsewhere")
        assert len(other.fake.requests) == 1
    assert [r.json["messages"][-1]["content"] for r in client.fake.requests] == ["hello"]


def test_directive_failures_are_retried_until_they_stop(client):
    resp = client.chat("fake/echo+fail-429x2", "third time lucky", max_retries=2)
    assert resp.content == "third time lucky"
    assert len(client.fake.requests) == 3  # two 429s (retry-after 10 ms), then the answer


def test_scripted_failure_beyond_the_retry_budget_raises(client):
    client.fake.script.fail(500, times=2)
    with pytest.raises(ServerError):
        client.chat("fake/echo", "hi", max_retries=1)
    assert len(client.fake.requests) == 2
    assert client.chat("fake/echo", "now fine", max_retries=0).content == "now fine"


def test_rate_limit_without_retries(client):
    with pytest.raises(RateLimitError) as info:
        client.chat("fake/fail-429", "hi", max_retries=0)
    assert info.value.retry_after == pytest.approx(0.01)


def test_hang_becomes_a_timeout(client):
    with pytest.raises(TimeoutError):
        client.chat("fake/hang", "hi", timeout=0.05, max_retries=0)


def test_stream_matches_the_whole_answer(client):
    whole = client.chat("fake/chat", "tell me something")
    events = list(client.stream("fake/chat", "tell me something"))
    assert "".join(e.text for e in events if e.type == "text") == whole.content
    done = events[-1]
    assert done.type == "done" and done.response is not None
    assert done.response.content == whole.content and done.response.usage == whole.usage


def test_reset_mid_stream_raises_after_output(client):
    seen: list[str] = []
    with pytest.raises(TransportError):
        for ev in client.stream("fake/echo+reset-after-3", "a b c d e f", max_retries=0):
            if ev.type == "text":
                seen.append(ev.text)
    assert seen == ["a", " b"]


def test_garbage_is_malformed(client):
    with pytest.raises(MalformedResponseError):
        client.chat("fake/garbage", "hi", max_retries=0)


def test_tools_structured_embeddings_images(client):
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    parsed = client.chat("fake/chat", "a city", response_format=City).parsed
    assert isinstance(parsed, City)
    vectors = client.embed("fake/embed", ["same", "same", "other"]).vectors
    assert vectors[0] == vectors[1] != vectors[2] and len(vectors[0]) == 256
    image = client.generate_image("fake/image", "a red square").images[0]
    assert image.data is not None and image.data.startswith(b"\x89PNG")


def test_simple_embeddings_through_the_client(client):
    resp = client.embed("simple/hash", ["red apples", "green apples"], dimensions=64)
    assert resp.provider == "simple" and len(resp.vectors) == 2 and len(resp.vectors[0]) == 64
    assert client.fake.requests == []  # computed in-process, no HTTP at all


async def test_async_client():
    async with AsyncClient() as client:
        assert (await client.chat("fake/echo", "async hello")).content == "async hello"
        texts = [ev.text async for ev in client.stream("fake/echo", "one two") if ev.type == "text"]
        assert "".join(texts) == "one two"
        with pytest.raises(TimeoutError):
            await client.chat("fake/hang", "hi", timeout=0.05, max_retries=0)
        resp = await client.embed("simple/hash", ["x"])
        assert len(resp.vectors[0]) == 256
