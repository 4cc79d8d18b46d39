"""Which rate limits a response-cache hit counts against, through the server and the official SDK.

A route's (and a provider's or target's) rpm/tpm protect the upstream, which a hit never
reaches: a hit counts against none of them, or with ``rpm = 2`` a miss and a hit left no room
for the next call that does need the upstream. A virtual key's rpm limits the client: every
request it sends counts, hits included (as a key's rate limit does at LiteLLM and Portkey);
its tpm counts tokens, and a hit takes none."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.gateway.openai_mock import OpenAIMock

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

ASK = [{"role": "user", "content": "the same question"}]


@pytest.fixture(scope="module")
def mock() -> Iterator[OpenAIMock]:
    m = OpenAIMock()
    yield m
    m.close()


def _memory(mock: OpenAIMock, state: dict[str, str] | None = None) -> Iterator[Live]:
    s = settings(env={"MOCK_KEY": "k", "CLOVERLEAF_MASTER_KEY": MASTER}, providers={"mock": mock.provider()},
                 cache={"mode": "exact"}, routes={"tight": {"targets": ["mock/gpt-test"]}},
                 limits={"tight": {"rpm": 2, "max_wait": 0}}, state=state or {})
    live = start_live(s)
    try:
        yield live
    finally:
        stop_live(live)


def _redis(mock: OpenAIMock) -> Iterator[Live]:
    from ..gateway.redis_support import fresh_prefix, redis_url

    s = settings(env={"MOCK_KEY": "k", "CLOVERLEAF_MASTER_KEY": MASTER}, providers={"mock": mock.provider()},
                 cache={"mode": "exact"}, routes={"tight": {"targets": ["mock/gpt-test"]}},
                 limits={"tight": {"rpm": 2, "max_wait": 0}}, state={"url": redis_url(), "prefix": fresh_prefix()})
    live = start_live(s)
    try:
        yield live
    finally:
        stop_live(live)


def _store_budgets(mock: OpenAIMock) -> Iterator[Live]:
    yield from _memory(mock, {"budgets": "store"})


@pytest.fixture(params=[pytest.param(_memory, id="memory"),
                        pytest.param(_store_budgets, id="store-budgets"),
                        pytest.param(_redis, id="redis", marks=pytest.mark.redis)])
def live(request: pytest.FixtureRequest, mock: OpenAIMock) -> Iterator[Live]:
    yield from request.param(mock)


@pytest.mark.parametrize("stream", [False, True], ids=["one-shot", "streamed"])
def test_a_cache_hit_leaves_the_routes_rpm_to_calls_that_reach_the_upstream(live: Live, mock: OpenAIMock,
                                                                             stream: bool) -> None:
    client = live.openai(create_key(live, name=f"no-limits-{stream}")["key"])

    def ask(messages: list[dict[str, str]]) -> None:
        if stream:
            list(client.chat.completions.create(model="tight", messages=messages, temperature=0, stream=True))
        else:
            client.chat.completions.create(model="tight", messages=messages, temperature=0)

    before = mock.chats
    ask(ASK)                                  # a miss: one of the route's two requests this minute
    # the cache is written after the answer goes out: a reader of the store waits for that
    # bookkeeping (README, "Reading spend"), so the next identical call finds the entry
    assert live.http(MASTER).get("/admin/spend").status_code == 200
    for _ in range(3):
        ask(ASK)                              # hits, back to back on the same connection
    ask([{"role": "user", "content": f"another question {stream}"}])   # the route's second request
    assert mock.chats - before == 2
    with pytest.raises(openai.RateLimitError):    # and now the route is full
        ask([{"role": "user", "content": f"a third question {stream}"}])


def test_a_cache_hit_counts_against_the_keys_own_rpm(live: Live, mock: OpenAIMock) -> None:
    client = live.openai(create_key(live, name="two-a-minute", rpm=2)["key"])
    client.chat.completions.create(model="mock/gpt-test", messages=ASK, temperature=0)
    client.chat.completions.create(model="mock/gpt-test", messages=ASK, temperature=0)   # a hit, counted
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="mock/gpt-test", messages=ASK, temperature=0)
    assert refused.value.response.headers.get("retry-after")
