"""A reader that flushes the store sees every call whose answer a client already has.

The server settles a hot route's call (its budgets, its record handed to the store's writer,
its cache write) after the answer is sent, off the client's critical path. Here that
bookkeeping is held back on purpose (:func:`slow_bookkeeping`), so a reader that ran before it
finished would miss the call every time, not once in a loaded CI run: ``/admin/spend``,
``/admin/keys/{id}``, ``/admin/traces`` and ``store.flush()`` from another thread must count
it all the same, on SQLite with the memory state and on PostgreSQL with Redis state, for
one-shot, streamed and cached answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

HELD_SECONDS = 0.5   # how long the bookkeeping is held back after each answer
HELLO = [{"role": "user", "content": "hello there"}]


@contextmanager
def slow_bookkeeping(live: Live, seconds: float = HELD_SECONDS) -> Iterator[None]:
    """Hold every settlement of the live server's gateway back by ``seconds`` (a provider-side
    stand-in for a slow state backend): the answer goes out first, the record comes later."""
    settlement: Any = live.state.backend.gateway._settlement
    settle_ok, close = settlement.settle_ok, settlement.close

    async def slow_settle_ok(*args: Any, **kw: Any) -> None:
        await asyncio.sleep(seconds)
        await settle_ok(*args, **kw)

    async def slow_close(*args: Any, **kw: Any) -> None:
        await asyncio.sleep(seconds)
        await close(*args, **kw)

    settlement.settle_ok, settlement.close = slow_settle_ok, slow_close
    try:
        yield
    finally:
        del settlement.settle_ok, settlement.close


def _memory_sqlite() -> Iterator[Live]:
    live = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, cache={"mode": "exact"}))
    try:
        yield live
    finally:
        stop_live(live)


def _postgres_redis() -> Iterator[Live]:
    from ..gateway.redis_support import fresh_prefix, redis_url
    from ..gateway.stores import fresh_postgres_database

    redis = redis_url()
    with fresh_postgres_database() as url:
        live = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, cache={"mode": "exact"},
                                   store={"url": url}, state={"url": redis, "prefix": fresh_prefix()}))
        try:
            yield live
        finally:
            stop_live(live)


@pytest.fixture(scope="module", params=[
    pytest.param(_memory_sqlite, id="sqlite-memory"),
    pytest.param(_postgres_redis, id="postgres-redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    yield from request.param()


def _spend(live: Live, key_id: str, trace_id: str) -> tuple[float, float, int, int]:
    """What the readers say right now: /admin/spend's total for the key, the key's budget spent,
    the calls /admin/traces lists for the trace, the calls ``store.flush()`` then finds."""
    with live.http(MASTER) as http:
        rows = http.get("/admin/spend", params={"by": "key"}).json()["data"]
        spent = http.get(f"/admin/keys/{key_id}").json()["spent"]
        listed = http.get("/admin/traces", params={"trace_id": trace_id}).json()["data"]
    by_key = sum(r["cost"] for r in rows if r["group"] == key_id)
    store = live.state.backend.store
    store.flush()   # from the test's thread: the server's loop runs in another
    stored = len(store.recent_calls(100, trace_id=trace_id))
    return by_key, spent, len(listed), stored


@pytest.mark.parametrize("how", ["chat", "stream", "messages"])
def test_a_call_answered_a_moment_ago_counts_for_every_reader(live: Live, how: str) -> None:
    key = create_key(live, name=f"settled-{how}", budget=100.0)
    trace = f"tr-settled-{how}"
    headers = {"x-cloverleaf-trace-id": trace}
    with slow_bookkeeping(live):
        if how == "chat":
            live.openai(key["key"]).chat.completions.create(model="priced", messages=HELLO, extra_headers=headers)
        elif how == "stream":
            chunks = live.openai(key["key"]).chat.completions.create(model="priced", messages=HELLO, stream=True,
                                                                     extra_headers=headers)
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hello there"
        else:
            live.anthropic(key["key"]).messages.create(model="priced", max_tokens=20, messages=HELLO,
                                                       extra_headers=headers)
        by_key, spent, listed, stored = _spend(live, key["id"], trace)
    assert by_key > 0 and spent == pytest.approx(by_key) and listed == stored == 1


@pytest.mark.parametrize("stream", [False, True], ids=["one-shot", "streamed"])
def test_a_cached_answer_counts_the_moment_its_client_has_it(live: Live, stream: bool) -> None:
    key = create_key(live, name=f"cached-{stream}", budget=100.0)
    trace = f"tr-cached-{stream}"
    client = live.openai(key["key"]).with_options(default_headers={"x-cloverleaf-trace-id": trace})
    messages = [{"role": "user", "content": f"the same question, streamed={stream}"}]

    def ask() -> None:
        if stream:
            list(client.chat.completions.create(model="priced", messages=messages, temperature=0, stream=True))
        else:
            client.chat.completions.create(model="priced", messages=messages, temperature=0)

    ask()
    live.state.backend.store.flush()   # the miss's bookkeeping, its cache write included, has run
    with slow_bookkeeping(live):
        ask()
        with live.http(MASTER) as http:
            calls = http.get("/admin/traces", params={"trace_id": trace}).json()["data"]
    assert sorted(c.get("cache") for c in calls) == ["hit", "miss"]


def test_a_failing_settlement_is_logged_and_holds_no_reader(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    settlement: Any = live.state.backend.gateway._settlement

    async def broken(*args: Any, **kw: Any) -> None:
        await asyncio.sleep(HELD_SECONDS)
        raise RuntimeError("the state backend went away with a secret sk-live-0123456789")

    settlement.settle_ok = broken
    try:
        with caplog.at_level(logging.WARNING, logger="cloverleaf.server"):
            live.openai(MASTER).chat.completions.create(model="priced", messages=HELLO)
            with live.http(MASTER) as http:
                assert http.get("/admin/spend").status_code == 200
    finally:
        del settlement.settle_ok
    assert "bookkeeping after a response failed: RuntimeError" in caplog.text and "sk-live" not in caplog.text


def test_an_error_answer_counts_too(live: Live) -> None:
    trace = "tr-settled-error"
    with slow_bookkeeping(live), pytest.raises(openai.APIStatusError):
        live.openai(MASTER).chat.completions.create(model="doomed", messages=HELLO,
                                                    extra_headers={"x-cloverleaf-trace-id": trace})
    with live.http(MASTER) as http:
        calls = http.get("/admin/traces", params={"trace_id": trace}).json()["data"]
    assert [c["status"] for c in calls] == ["error"]
