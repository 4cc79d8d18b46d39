"""Budgets through a Redis that loses its data or goes away: no spend is dropped, no
reservation is held for ever, and an answer that is complete reaches its caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._engine import Engine
from cloverleaf._types import StreamEvent
from cloverleaf.gateway import Gateway, ManualClock
from cloverleaf.gateway.breaker import BreakerPolicy
from cloverleaf.gateway.state import Hold
from cloverleaf.gateway.state.redis import RESERVATION_TTL_SECONDS, RedisState

from .conftest import Harness, chat_request, upstream
from .redis_support import OwnRedis, fresh_prefix, redis_state

pytestmark = pytest.mark.redis

KEY = "key:k|total"
POLICY = BreakerPolicy(failure_threshold=3, cooldown_seconds=30.0, probe_timeout_seconds=10.0)
# fake/echo bills $1/M input and $2/M output; this reply costs (1 + 2000) / 1e6 = $0.002001
CALL_COST = 0.002001
REPLY_USAGE = {"input_tokens": 1, "output_tokens": 1000}


@pytest.mark.parametrize("ending", ["close", "finish"])
async def test_a_call_in_flight_when_redis_comes_back_empty_is_charged_to_the_reseeded_counter(ending: str) -> None:
    """Its reservation went with the data; the counter seeded again from the ledger lacks the
    call (its spend reaches the ledger only after it ends): its cost must still be counted."""
    async with redis_state() as state:
        await state.budget_seed(KEY, 0.25)
        adm = await state.admit([], [Hold(KEY, 1.0, 0.3)], 0.0, 0.0)
        assert adm.granted
        await state.clear()                       # Redis came back empty (FLUSHDB, a restart)...
        await state.budget_seed(KEY, 0.25)        # ...and the next admission seeded the counter
        if ending == "close":
            await state.close(adm.ticket, {}, 0.2)
        else:
            await state.finish(adm.ticket, {}, 0.2, None, {}, "t", 1.0, POLICY, 10.0)
        assert await state.budget_usage(KEY) == (pytest.approx(0.45), 0.0)
        await state.close(adm.ticket, {}, 0.2)    # closing is once: a second close adds nothing
        assert await state.budget_usage(KEY) == (pytest.approx(0.45), 0.0)


async def test_a_dead_process_reservation_is_given_back_after_redis_expired_its_set() -> None:
    """The set of open reservations expires (Redis TTL) an hour after the last admission; the
    counter of a ``total`` budget does not. Its reservations must come back all the same."""
    import redis.asyncio as aioredis

    prefix = fresh_prefix()
    async with redis_state(prefix) as state:
        await state.budget_seed(KEY, 0.0)
        assert (await state.admit([], [Hold(KEY, 1.0, 0.9)], 0.0, 0.0)).granted   # never closed: kill -9
        client = aioredis.Redis.from_url(state._url, decode_responses=True)
        try:
            # the set outlives every entry in it, so a missing set means nothing is reserved
            assert await client.pttl(f"{prefix}r:{KEY}") > RESERVATION_TTL_SECONDS * 1000
            assert await client.pttl(f"{prefix}b:{KEY}") == -1
            await client.delete(f"{prefix}r:{KEY}")      # what Redis does once its TTL has run out
        finally:
            await client.aclose()
        later = await state.admit([], [Hold(KEY, 1.0, 0.5)], 2 * RESERVATION_TTL_SECONDS, 0.0)
        assert later.granted
        assert await state.budget_usage(KEY) == (0.0, pytest.approx(0.5))


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


def _gateway(harness: Harness, url: str) -> Gateway:
    """A gateway on its own Redis with a $1 route budget; its Redis client retries a failed
    command once at once (enough to reconnect after a restart; an outage fails fast)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    settings = harness.settings(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}})
    engine = Engine(settings)
    state = RedisState(url, prefix=fresh_prefix(), retry=Retry(NoBackoff(), 1))
    gw = Gateway(settings, engine, clock=ManualClock(autojump=True), state=state)
    harness.made.append((gw, engine))
    return gw


async def _answer_while_redis_stops(gw: Gateway, server: OwnRedis, stream: bool) -> str:
    """One call; Redis stops after the upstream answered (a stream: after its first output)
    and before the gateway settles the call."""
    if stream:
        events: list[StreamEvent] = []
        async for event in gw.astream("r", chat_request(max_tokens=1000)):
            if not events:
                server.stop()
            events.append(event)
        assert events[-1].type == "done" and events[-1].response is not None
        return events[-1].response.text
    answer = gw.engine.achat

    async def then_redis_stops(*args: Any, **kwargs: Any) -> Any:
        resp = await answer(*args, **kwargs)
        server.stop()
        return resp

    gw.engine.achat = then_redis_stops  # type: ignore[method-assign]
    try:
        return (await gw.achat("r", chat_request(max_tokens=1000))).text
    finally:
        gw.engine.achat = answer  # type: ignore[method-assign]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "chat"])
async def test_an_answer_completed_while_redis_is_down_is_delivered_recorded_and_charged(
        harness: Harness, own_redis: OwnRedis, caplog: pytest.LogCaptureFixture, stream: bool) -> None:
    gw = _gateway(harness, own_redis.url)
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE, times=2)
    with caplog.at_level(logging.WARNING, logger="cloverleaf.gateway"):
        assert await _answer_while_redis_stops(gw, own_redis, stream) == "paid"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "StateUnavailable" in warnings[0] and own_redis.url.split("/")[2] in warnings[0]
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert call.status == "ok" and call.cost == pytest.approx(CALL_COST)
    assert gw.store.budget_usage("route:r", "total") == (pytest.approx(CALL_COST), 0.0)
    own_redis.start()                             # back, empty: the counter comes from the ledger
    await gw.achat("r", chat_request(max_tokens=1000))
    assert await gw.state.budget_usage("route:r|total") == (pytest.approx(2 * CALL_COST), pytest.approx(0.0))
