"""The response cache over HTTP: both APIs, streams replayed as streams, Cache-Control,
per-key scoping with virtual keys, and the hit in headers, traces and metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.gateway.openai_mock import OpenAIMock

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

MODEL = "mock/gpt-test"


@pytest.fixture(scope="module")
def mock() -> Iterator[OpenAIMock]:
    m = OpenAIMock()
    yield m
    m.close()


@pytest.fixture(scope="module")
def live(mock: OpenAIMock) -> Iterator[Live]:
    s = settings(env={"MOCK_KEY": "k", "CLOVERLEAF_MASTER_KEY": MASTER}, providers={"mock": mock.provider()},
                 cache={"mode": "exact"})
    server = start_live(s)
    yield server
    stop_live(server)


@pytest.fixture(scope="module")
def key(live: Live) -> str:
    return create_key(live, name="cache-user")["key"]  # type: ignore[no-any-return]


def test_openai_hit_and_miss_headers(live: Live, mock: OpenAIMock, key: str) -> None:
    client = live.openai(key)
    before = mock.chats
    msgs = [{"role": "user", "content": "openai cache question"}]
    first = client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, temperature=0)
    second = client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, temperature=0)
    assert first.headers["x-cloverleaf-cache"] == "miss" and second.headers["x-cloverleaf-cache"] == "hit"
    assert second.headers["x-cloverleaf-cache-similarity"] == "1.0000"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().usage is not None
    assert mock.chats == before + 1
    # not deterministic: the cache is not consulted, and the header says nothing
    third = client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs)
    assert "x-cloverleaf-cache" not in third.headers and mock.chats == before + 2


def test_anthropic_api_shares_the_entry_and_streams_from_cache(live: Live, mock: OpenAIMock, key: str) -> None:
    client = live.anthropic(key)
    before = mock.chats
    msgs = [{"role": "user", "content": "anthropic cache question with several words"}]
    first = client.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=msgs,
                                                     extra_body={"temperature": 0})
    assert first.headers["x-cloverleaf-cache"] == "miss"
    with client.messages.stream(model=MODEL, max_tokens=50, messages=msgs, extra_body={"temperature": 0}) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert mock.chats == before + 1
    assert "".join(pieces) == first.parse().content[0].text == final.content[0].text


def test_a_different_anthropic_beta_set_is_a_different_question(live: Live, mock: OpenAIMock, key: str) -> None:
    """The Anthropic SDK's betas=[...] (anthropic-beta) can change the answer: a call with other
    betas is not served the entry of a call without them, while the same set, in any order, is."""
    client = live.anthropic(key)
    msgs = [{"role": "user", "content": "beta-scoped cache question"}]

    def ask(betas: list[str] | None) -> str:
        extra = {"betas": betas} if betas is not None else {}
        r = client.beta.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=msgs,
                                                          extra_body={"temperature": 0}, **extra)
        return r.headers["x-cloverleaf-cache"]

    before = mock.chats
    assert ask(None) == "miss"
    assert ask(["context-1m-2025-08-07"]) == "miss"
    assert ask(["interleaved-thinking-2025-05-14", "context-1m-2025-08-07"]) == "miss"
    assert ask(["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]) == "hit"
    assert ask(None) == "hit"
    assert mock.chats == before + 3


def test_openai_stream_replay_keeps_chunk_boundaries(live: Live, mock: OpenAIMock, key: str) -> None:
    client = live.openai(key)
    before = mock.chats
    msgs = [{"role": "user", "content": "stream me five words please"}]

    def run() -> tuple[list[str], str]:
        with client.chat.completions.with_streaming_response.create(
                model=MODEL, messages=msgs, temperature=0, stream=True) as resp:
            header = resp.headers.get("x-cloverleaf-cache", "")
            chunks = [c.choices[0].delta.content or "" for c in resp.parse() if c.choices]
        return [c for c in chunks if c], header

    live_chunks, h1 = run()
    cached_chunks, h2 = run()
    assert (h1, h2) == ("miss", "hit")
    assert cached_chunks == live_chunks and len(live_chunks) >= 5
    assert mock.chats == before + 1


def test_cache_control_no_cache_and_no_store(live: Live, mock: OpenAIMock, key: str) -> None:
    client = live.openai(key)
    msgs = [{"role": "user", "content": "cache-control question"}]
    client.chat.completions.create(model=MODEL, messages=msgs, temperature=0)
    before = mock.chats
    r = client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, temperature=0,
                                                         extra_headers={"Cache-Control": "no-store"})
    assert "x-cloverleaf-cache" not in r.headers and mock.chats == before + 1
    r = client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, temperature=0,
                                                         extra_headers={"Cache-Control": "no-cache"})
    refreshed = r.parse().choices[0].message.content
    assert mock.chats == before + 2 and refreshed.startswith(f"answer {before + 2}")
    again = client.chat.completions.create(model=MODEL, messages=msgs, temperature=0)
    assert again.choices[0].message.content == refreshed and mock.chats == before + 2


def test_entries_are_scoped_per_key(live: Live, mock: OpenAIMock, key: str) -> None:
    other = create_key(live, name="other-user")["key"]
    msgs = [{"role": "user", "content": "per-key question"}]
    live.openai(key).chat.completions.create(model=MODEL, messages=msgs, temperature=0)
    before = mock.chats
    r = live.openai(other).chat.completions.with_raw_response.create(model=MODEL, messages=msgs, temperature=0)
    assert r.headers["x-cloverleaf-cache"] == "miss" and mock.chats == before + 1
    narrow = create_key(live, name="narrow", allowed_models=["fake/*"])["key"]
    with pytest.raises(Exception) as err:    # may not use the model: no cached answer either
        live.openai(narrow).chat.completions.create(model=MODEL, messages=msgs, temperature=0)
    assert getattr(err.value, "status_code", None) == 403


def test_hits_are_in_traces_and_metrics(live: Live, key: str) -> None:
    msgs = [{"role": "user", "content": "traced cache question"}]
    client = live.openai(key)
    for _ in range(2):
        client.chat.completions.create(model=MODEL, messages=msgs, temperature=0,
                                       extra_headers={"x-cloverleaf-trace-id": "tr-cache-1"})
    live.state.backend.store.flush()
    with live.http(MASTER) as http:
        calls = http.get("/admin/traces", params={"trace_id": "tr-cache-1"}).json()
        text = http.get("/metrics").text
    rows = calls["data"] if isinstance(calls, dict) else calls
    assert sorted(c.get("cache") for c in rows) == ["hit", "miss"]
    assert [c["cost"] for c in rows if c.get("cache") == "hit"] == [0.0]
    assert 'cloverleaf_cache_total{api="openai",model="mock/gpt-test",result="hit"}' in text


def test_a_hit_serves_invalid_structured_output_as_its_miss_did(live: Live, mock: OpenAIMock, key: str) -> None:
    """The server passes structured output through unvalidated (its clients validate it, and
    must get a cut-off answer's text): a hit must not validate what the miss did not (a 500)."""
    client = live.openai(key)
    msgs = [{"role": "user", "content": "give me JSON"}]
    answers = [client.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, temperature=0,
                                                                response_format={"type": "json_object"})
               for _ in range(2)]
    assert [a.headers["x-cloverleaf-cache"] for a in answers] == ["miss", "hit"]
    miss, hit = (a.parse().choices[0].message.content for a in answers)
    assert hit == miss and miss is not None and miss.startswith("answer ")   # not JSON, served as it is


def _metric(live: Live, name: str, model: str, **labels: str) -> float:
    with live.http(MASTER) as http:
        text = http.get("/metrics").text
    wanted = [f'model="{model}"', *(f'{k}="{v}"' for k, v in labels.items())]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(w in line for w in wanted))


def _once_counted(live: Live, result: str, count: float) -> None:
    """Wait until the server has counted ``count`` cache lookups of ``result``: it records a
    request's metrics just after sending its answer, so a read at once can come first."""
    deadline = time.monotonic() + 10.0
    while _metric(live, "cloverleaf_cache_total", MODEL, result=result) < count:
        assert time.monotonic() < deadline, f"the server never counted {count} cache {result}s"
        time.sleep(0.02)


def test_hits_add_no_tokens_to_the_metrics_streamed_or_not(live: Live, key: str) -> None:
    client = live.openai(key)
    msgs = [{"role": "user", "content": "metrics cache question"}]
    misses = _metric(live, "cloverleaf_cache_total", MODEL, result="miss")
    hits = _metric(live, "cloverleaf_cache_total", MODEL, result="hit")
    client.chat.completions.create(model=MODEL, messages=msgs, temperature=0)
    _once_counted(live, "miss", misses + 1)
    spent = _metric(live, "cloverleaf_tokens_total", MODEL)
    assert spent > 0
    assert client.chat.completions.create(model=MODEL, messages=msgs, temperature=0).usage is not None
    with client.chat.completions.with_streaming_response.create(
            model=MODEL, messages=msgs, temperature=0, stream=True, stream_options={"include_usage": True}) as r:
        assert r.headers["x-cloverleaf-cache"] == "hit"
        assert [c.usage for c in r.parse() if c.usage is not None]   # the client still sees the usage
    _once_counted(live, "hit", hits + 2)
    assert _metric(live, "cloverleaf_tokens_total", MODEL) == spent


def test_semantic_cache_over_both_apis(mock: OpenAIMock) -> None:
    s = settings(env={"MOCK_KEY": "k"}, providers={"mock": mock.provider()},
                 cache={"mode": "semantic", "embedding_model": "simple/hash", "similarity": 0.8})
    server = start_live(s)
    try:
        before = mock.chats
        server.openai().chat.completions.create(
            model=MODEL, temperature=0, max_tokens=20, messages=[{"role": "user", "content": "What is the capital city of France?"}])
        r = server.openai().chat.completions.with_raw_response.create(
            model=MODEL, temperature=0, max_tokens=20, messages=[{"role": "user", "content": "what is the capital city of france"}])
        assert r.headers["x-cloverleaf-cache"] == "hit"
        assert 0.8 <= float(r.headers["x-cloverleaf-cache-similarity"]) <= 1.0
        a = server.anthropic().messages.with_raw_response.create(   # same scope: same max_tokens and temperature
            model=MODEL, max_tokens=20, extra_body={"temperature": 0},
            messages=[{"role": "user", "content": "What's the capital city of France?"}])
        assert a.headers["x-cloverleaf-cache"] == "hit"
        far = server.openai().chat.completions.with_raw_response.create(
            model=MODEL, temperature=0, max_tokens=20, messages=[{"role": "user", "content": "Recipe for sourdough bread"}])
        assert far.headers["x-cloverleaf-cache"] == "miss"
        assert mock.chats == before + 2
    finally:
        stop_live(server)
