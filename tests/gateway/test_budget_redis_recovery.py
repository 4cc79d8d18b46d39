"""Budgets through a Redis that loses its data: no spend is dropped, no reservation is held
for ever."""

from __future__ import annotations

import pytest

from cloverleaf.gateway.breaker import BreakerPolicy
from cloverleaf.gateway.state import Hold
from cloverleaf.gateway.state.redis import RESERVATION_TTL_SECONDS

from .redis_support import fresh_prefix, redis_state

pytestmark = pytest.mark.redis

KEY = "key:k|total"
POLICY = BreakerPolicy(failure_threshold=3, cooldown_seconds=30.0, probe_timeout_seconds=10.0)


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
