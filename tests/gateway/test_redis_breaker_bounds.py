"""The Redis state's breakers hash stays bounded however many model names callers try, as
MemoryState's table does (``test_memory_bounds.py``): a key allowed ``provider/*`` names a new
target with every name, and each that failed once while its upstream was down used to stay in
the one shared hash for good (every write renewed the whole hash's expiry), read whole by
``/admin/breakers`` and the health page. Breakers that no longer matter are let go inside the
scripts that write the hash once it holds ``MAX_BREAKERS``, without what still counts."""

from __future__ import annotations

import pytest

from cloverleaf.gateway.breaker import BreakerPolicy
from cloverleaf.gateway.state import redis as redis_state_module
from cloverleaf.gateway.state.base import AttemptAsk
from cloverleaf.gateway.state.redis import RedisState

from .redis_support import fresh_prefix, keys_under, redis_state

pytestmark = pytest.mark.redis

POLICY = BreakerPolicy(failure_threshold=1, cooldown_seconds=3600.0)


async def held(state: RedisState) -> int:
    """How many records the breakers hash holds (what ``/admin/breakers`` reads)."""
    return len(await state.breaker_snapshots())


async def test_breakers_of_names_that_failed_once_are_let_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 names each failing once, 10 a second: the hash never passes the cap, the breakers
    still failing now (and an open one) are kept, and once the one-off failures are a cooldown
    old the next calls let every one of them go."""
    monkeypatch.setattr(redis_state_module, "MAX_BREAKERS", 100)
    policy = BreakerPolicy(failure_threshold=3, cooldown_seconds=60.0)
    async with redis_state() as state:
        now = 1000.0
        await state.breaker_record("mylab/down", False, now, POLICY, "boom")   # open for an hour
        for i in range(1000):
            adm = await state.admit([], [], now, 0.0, 61.0, AttemptAsk(f"mylab/m{i}", policy, [], 0.0))
            assert adm.granted and adm.attempt is not None and adm.attempt.decision.allowed
            await state.breaker_record(f"mylab/m{i}", False, now, policy, "ServerError")
            now += 0.1
            if i % 50 == 0:
                assert await held(state) <= 100
        snaps = await state.breaker_snapshots()
        assert len(snaps) <= 100
        assert snaps["mylab/down"].state == "open"
        assert snaps["mylab/m999"].consecutive_failures == 1     # failing now: kept
        now += 120.0    # two minutes on: the one-off failures are a cooldown old
        for i in range(300):
            await state.admit([], [], now, 0.0, 61.0, AttemptAsk(f"ok/m{i}", policy, [], 0.0))
            await state.breaker_record(f"ok/m{i}", True, now, policy)
        snaps = await state.breaker_snapshots()
        assert len(snaps) <= 100 and not [k for k in snaps if k.startswith("mylab/m")]
        assert snaps["mylab/down"].state == "open"
        assert not (await state.breaker_acquire("mylab/down", now, POLICY)).allowed


async def test_a_breaker_is_let_go_only_once_its_cooldown_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_state_module, "MAX_BREAKERS", 10)
    policy = BreakerPolicy(failure_threshold=1, cooldown_seconds=60.0)
    async with redis_state() as state:
        await state.breaker_record("mylab/opened", False, 0.0, policy, "boom")
        for i in range(30):   # crowd the hash within the cooldown: the open breaker still refuses
            await state.breaker_record(f"x/{i}", True, 1.0, policy)
            await state.admit([], [], 1.0, 0.0, 61.0, AttemptAsk(f"x/{i}", policy, [], 0.0))
        assert await held(state) <= 10
        assert not (await state.breaker_acquire("mylab/opened", 30.0, policy)).allowed
        for i in range(30):   # past it, a call would be the probe: the breaker may go
            await state.admit([], [], 61.0, 0.0, 61.0, AttemptAsk(f"y/{i}", policy, [], 0.0))
        assert "mylab/opened" not in await state.breaker_snapshots()
        assert (await state.breaker_acquire("mylab/opened", 61.0, policy)).allowed


async def test_records_an_older_replica_wrote_are_read_and_let_go_by_their_own_fields(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A rolling upgrade: records the previous version wrote (the same format, but in no set of
    when they stop mattering) still parse, and once the hash is full they are judged by their own
    fields — clean and stale ones go, an open one within its cooldown stays and keeps refusing —
    so a hash that leaked before the upgrade shrinks too."""
    monkeypatch.setattr(redis_state_module, "MAX_BREAKERS", 50)
    policy = BreakerPolicy(failure_threshold=3, cooldown_seconds=60.0)
    async with redis_state() as state:
        client = state._client()
        legacy = {f"old/clean{i}": "closed|0|||||" for i in range(200)}
        legacy.update({f"old/stale{i}": "open|3|0||||" for i in range(200)})             # opened at 0
        legacy["old/open"] = "open|3|990|||1|ServerError"                                 # opened at 990
        legacy["old/failing"] = "closed|2||||1|Server|Error"
        await client.hset(state._breakers_key, mapping=legacy)
        snaps = await state.breaker_snapshots()
        assert snaps["old/failing"].last_error == "Server|Error" and snaps["old/open"].opened_at == 990.0
        now = 1000.0
        for i in range(200):
            await state.admit([], [], now, 0.0, 61.0, AttemptAsk(f"new/m{i}", policy, [], 0.0))
        snaps = await state.breaker_snapshots()
        assert len(snaps) <= 50
        assert not [k for k in snaps if k.startswith(("old/clean", "old/stale"))]
        assert snaps["old/open"].state == "open" and snaps["old/failing"].consecutive_failures == 2
        assert (await state.breaker_acquire("old/open", now, policy)).retry_after == 50.0


async def test_the_keys_that_bound_the_hash_are_namespaced_and_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_state_module, "MAX_BREAKERS", 5)
    prefix = fresh_prefix()
    async with redis_state(prefix) as state:
        await state.breaker_record("a", False, 0.0, POLICY, "boom")                       # open
        await state.breaker_record("b", False, 0.0, BreakerPolicy(), "boom")              # failing
        for i in range(10):
            await state.breaker_acquire(f"c{i}", 1.0, POLICY)
        keys = await keys_under(prefix)
        assert keys == sorted(f"{prefix}circuits{part}" for part in ("", ":failing", ":open", ":scan"))
        client = state._client()
        assert all(0 < ttl <= 86_400_000 for ttl in [await client.pttl(k) for k in keys])


async def test_latency_averages_of_names_tried_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each name that answered once left its average in the shared latency hash for good; a new
    one finding it full empties it (as memory does: routing relearns them), a known one is folded."""
    monkeypatch.setattr(redis_state_module, "MAX_LATENCIES", 50)
    policy = BreakerPolicy()
    async with redis_state() as state:
        for i in range(300):
            if i % 2:
                await state.record_latency(f"mylab/m{i}", 20.0)
            else:
                await state.finish(None, {}, 0.0, None, {}, f"mylab/m{i}", float(i), policy, 20.0)
        assert len(await state._client().hgetall(state._latency_key)) <= 50
        await state.record_latency("mylab/m299", 40.0)
        assert await state.latencies(["mylab/m299"]) == {"mylab/m299": pytest.approx(0.3 * 40.0 + 0.7 * 20.0)}
