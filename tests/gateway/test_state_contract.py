"""One behavioural contract for every StateBackend, run against MemoryState and RedisState.

Times are passed in as ``now`` (the gateway's controllable clock), so the same literal
numbers drive both backends and every expected wait, reservation time and breaker record is
exact. The last tests replay random operation sequences on both backends side by side and
require identical answers, and hammer one bucket with 200 concurrent ``take`` calls.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloverleaf.gateway.breaker import BreakerDecision, BreakerPolicy, BreakerSnapshot
from cloverleaf.gateway.state import AttemptAsk, Bucket, Hold, StateBackend
from cloverleaf.gateway.state.memory import MemoryState

from .redis_support import redis_state

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis),
            pytest.param("redis_cluster", marks=pytest.mark.redis)]
POLICY = BreakerPolicy(failure_threshold=3, cooldown_seconds=30.0, probe_timeout_seconds=10.0)


@pytest.fixture(params=BACKENDS)
async def state(request: pytest.FixtureRequest) -> AsyncIterator[StateBackend]:
    if request.param == "memory":
        yield MemoryState()
        return
    if request.param == "redis_cluster":   # the same contract on a Redis Cluster (redis+cluster://)
        async with redis_state(url=request.getfixturevalue("redis_cluster")) as backend:
            yield backend
        return
    async with redis_state() as backend:
        yield backend


def rpm(key: str = "b", limit: float = 3.0) -> Bucket:
    return Bucket(f"{key}:rpm", limit, 1.0)


# -- rolling windows ------------------------------------------------------------------
async def test_takes_until_the_limit_then_refuses_with_the_wait(state: StateBackend) -> None:
    for now in (0.0, 10.0, 20.0):
        grant = await state.take([rpm()], now, max_wait=0.0)
        assert grant.granted and grant.wait == 0.0 and grant.at == now and grant.ticket
    refused = await state.take([rpm()], 25.0, max_wait=0.0)
    assert not refused.granted and refused.ticket is None and refused.at is None
    assert refused.wait == 35.0 and refused.limiting_key == "b:rpm"  # the first slot returns at 60
    assert await state.usage("b:rpm", 25.0) == 3.0


async def test_a_wait_within_bound_reserves_at_now_plus_wait(state: StateBackend) -> None:
    for _ in range(3):
        await state.take([rpm()], 0.0, max_wait=0.0)
    grant = await state.take([rpm()], 5.0, max_wait=60.0)
    assert grant.granted and grant.wait == 55.0 and grant.at == 60.0
    # the reservation sits in the future: not in the window at 5, in it at 60
    assert await state.usage("b:rpm", 5.0) == 3.0
    assert await state.usage("b:rpm", 60.0) == 1.0


async def test_waiters_queue_in_order_one_window_apart(state: StateBackend) -> None:
    grants = [await state.take([rpm(limit=2.0)], 0.0, max_wait=1000.0) for _ in range(5)]
    assert [g.at for g in grants] == [0.0, 0.0, 60.0, 60.0, 120.0]
    assert [g.wait for g in grants] == [0.0, 0.0, 60.0, 60.0, 120.0]
    assert len({g.ticket for g in grants}) == 5


async def test_tokens_come_back_exactly_one_window_later(state: StateBackend) -> None:
    for _ in range(3):
        await state.take([rpm()], 0.0, max_wait=0.0)
    assert not (await state.take([rpm()], 59.999, max_wait=0.0)).granted
    late = await state.take([rpm()], 60.0, max_wait=0.0)
    assert late.granted and late.at == 60.0
    assert await state.usage("b:rpm", 60.0) == 1.0


async def test_all_or_nothing_across_buckets(state: StateBackend) -> None:
    tokens = Bucket("b:tpm", 1000.0, 900.0)
    assert (await state.take([rpm(), tokens], 0.0, max_wait=0.0)).granted
    refused = await state.take([rpm(), Bucket("b:tpm", 1000.0, 200.0)], 1.0, max_wait=30.0)
    assert not refused.granted and refused.limiting_key == "b:tpm" and refused.wait == 59.0
    assert await state.usage("b:rpm", 1.0) == 1.0  # the request bucket was not touched either
    assert await state.usage("b:tpm", 1.0) == 900.0


async def test_the_longest_wait_decides_and_names_its_bucket(state: StateBackend) -> None:
    await state.take([Bucket("a:rpm", 1.0, 1.0)], 0.0, 0.0)
    await state.take([Bucket("c:rpm", 1.0, 1.0)], 30.0, 0.0)
    grant = await state.take([Bucket("a:rpm", 1.0, 1.0), Bucket("c:rpm", 1.0, 1.0)], 40.0, max_wait=60.0)
    assert grant.granted and grant.at == 90.0 and grant.wait == 50.0 and grant.limiting_key == "c:rpm"
    assert await state.usage("a:rpm", 90.0) == 1.0  # both reserved at the common time


async def test_an_amount_above_the_limit_waits_for_an_empty_window(state: StateBackend) -> None:
    await state.take([Bucket("b:tpm", 100.0, 10.0)], 0.0, 0.0)
    grant = await state.take([Bucket("b:tpm", 100.0, 500.0)], 1.0, max_wait=100.0)
    assert grant.granted and grant.at == 60.0
    assert await state.usage("b:tpm", 60.0) == 100.0  # counted as the whole limit


async def test_settle_replaces_named_amounts_and_keeps_the_rest(state: StateBackend) -> None:
    grant = await state.take([rpm(), Bucket("b:tpm", 1000.0, 800.0)], 0.0, 0.0)
    assert grant.ticket is not None
    await state.settle(grant.ticket, {"b:tpm": 120.0, "unrelated:tpm": 5.0})
    assert await state.usage("b:tpm", 0.0) == 120.0
    assert await state.usage("b:rpm", 0.0) == 1.0
    assert await state.usage("unrelated:tpm", 0.0) == 0.0
    # the freed tokens are available at once
    assert (await state.take([Bucket("b:tpm", 1000.0, 880.0)], 1.0, 0.0)).granted


async def test_a_closed_reservation_cannot_be_settled_or_released_again(state: StateBackend) -> None:
    grant = await state.take([Bucket("b:tpm", 1000.0, 500.0)], 0.0, 0.0)
    assert grant.ticket is not None
    await state.settle(grant.ticket, {"b:tpm": 300.0})
    await state.settle(grant.ticket, {"b:tpm": 1.0})
    await state.release(grant.ticket)
    assert await state.usage("b:tpm", 0.0) == 300.0
    await state.release("not-a-ticket")
    await state.settle("not-a-ticket", {"b:tpm": 0.0})
    assert await state.usage("b:tpm", 0.0) == 300.0


async def test_settle_clamps_negative_amounts_and_keeps_all_on_empty(state: StateBackend) -> None:
    first = await state.take([Bucket("b:tpm", 1000.0, 500.0)], 0.0, 0.0)
    second = await state.take([Bucket("b:tpm", 1000.0, 200.0)], 0.0, 0.0)
    assert first.ticket and second.ticket
    await state.settle(first.ticket, {"b:tpm": -40.0})
    await state.settle(second.ticket, {})
    assert await state.usage("b:tpm", 0.0) == 200.0


async def test_release_gives_everything_back(state: StateBackend) -> None:
    grant = await state.take([rpm(limit=1.0), Bucket("b:tpm", 100.0, 100.0)], 0.0, 0.0)
    assert grant.ticket is not None
    await state.release(grant.ticket)
    assert await state.usage("b:rpm", 0.0) == 0.0 and await state.usage("b:tpm", 0.0) == 0.0
    again = await state.take([rpm(limit=1.0), Bucket("b:tpm", 100.0, 100.0)], 0.0, 0.0)
    assert again.granted and again.wait == 0.0


async def test_released_future_reservations_still_hold_their_place_in_time(state: StateBackend) -> None:
    """Released slots keep their time (amount 0): a later waiter is never placed before them."""
    await state.take([rpm(limit=1.0)], 0.0, 0.0)
    queued = [await state.take([rpm(limit=1.0)], 0.0, max_wait=200.0) for _ in range(2)]
    assert [g.at for g in queued] == [60.0, 120.0]
    for g in queued:
        assert g.ticket is not None
        await state.release(g.ticket)
    after = await state.take([rpm(limit=1.0)], 1.0, max_wait=200.0)
    assert after.at == 120.0 and after.wait == 119.0


async def test_a_call_that_fits_goes_at_once_even_behind_a_later_admission(state: StateBackend) -> None:
    """Callers' clock reads reach the state out of order (over Redis, concurrent round trips
    do not keep their order): a call whose ``now`` is a moment behind the newest admission but
    that fits must not be told to wait (with max_wait 0: refused). It goes at once, logged at
    the newest admission's time to keep the log in order; the limit still holds."""
    first = await state.take([rpm(limit=3.0)], 10.0, 0.0)
    assert first.granted and first.at == 10.0
    late = await state.take([rpm(limit=3.0)], 9.99, 0.0)
    assert late.granted and late.wait == 0.0 and late.at == 10.0 and late.limiting_key is None
    adm = await state.admit([rpm(limit=3.0)], [], 9.98, 0.0, attempt=ask(buckets=(rpm("prov"),)))
    assert adm.granted and adm.wait == 0.0
    assert adm.attempt is not None and adm.attempt.grant is not None
    assert adm.attempt.grant.granted and adm.attempt.grant.wait == 0.0 and adm.attempt.grant.at == 10.0
    full = await state.take([rpm(limit=3.0)], 10.0, 0.0)   # three in the window: the limit holds
    assert not full.granted and full.wait == 60.0 and full.limiting_key == "b:rpm"


async def test_a_call_that_fits_goes_at_once_ahead_of_released_future_slots(state: StateBackend) -> None:
    """A queued slot given back leaves room: a call that fits goes now (logged after the queue)."""
    head = await state.take([rpm(limit=1.0)], 0.0, 0.0)
    queued = await state.take([rpm(limit=1.0)], 0.0, max_wait=200.0)
    assert queued.at == 60.0 and head.ticket is not None and queued.ticket is not None
    await state.release(head.ticket)
    await state.release(queued.ticket)
    now = await state.take([rpm(limit=1.0)], 1.0, max_wait=0.0)
    assert now.granted and now.wait == 0.0 and now.at == 60.0
    assert not (await state.take([rpm(limit=1.0)], 2.0, max_wait=0.0)).granted


async def test_float_amounts_use_the_same_arithmetic(state: StateBackend) -> None:
    assert (await state.take([Bucket("f:tpm", 0.3, 0.1)], 0.0, 0.0)).granted
    assert (await state.take([Bucket("f:tpm", 0.3, 0.1)], 10.0, 0.0)).granted
    # 0.1 + 0.1 + 0.1 > 0.3 in floats: a third 0.1 waits for the first to return
    third = await state.take([Bucket("f:tpm", 0.3, 0.1)], 20.0, max_wait=0.0)
    assert not third.granted and third.wait == 40.0
    # 0.2 fits once the first 0.1 is back only within the 1e-9 tolerance: at 60, not at 70
    grant = await state.take([Bucket("f:tpm", 0.3, 0.2)], 20.0, max_wait=100.0)
    assert grant.granted and grant.at == 60.0
    assert await state.usage("f:tpm", 20.0) == 0.1 + 0.1


async def test_no_buckets_is_an_immediate_grant(state: StateBackend) -> None:
    grant = await state.take([], 7.0, 0.0)
    assert grant.granted and grant.wait == 0.0 and grant.at == 7.0 and grant.ticket
    await state.settle(grant.ticket, {})
    await state.release(grant.ticket)


async def test_usage_of_an_unknown_key_is_zero(state: StateBackend) -> None:
    assert await state.usage("nobody:rpm", 100.0) == 0.0


async def test_200_concurrent_takes_never_exceed_the_limit_per_window(state: StateBackend) -> None:
    bucket = Bucket("hot:rpm", 60.0, 1.0)
    grants = await asyncio.gather(*(state.take([bucket], 0.0, max_wait=0.0) for _ in range(200)))
    assert sum(g.granted for g in grants) == 60
    assert await state.usage("hot:rpm", 0.0) == 60.0
    # with room to wait, everyone is placed, and no window ever holds more than 60
    queued = await asyncio.gather(*(state.take([bucket], 1.0, max_wait=1e6) for _ in range(200)))
    assert all(g.granted for g in queued)
    times = sorted(g.at for g in queued if g.at is not None)
    assert _max_in_any_window(times + [0.0] * 60) == 60


async def test_200_concurrent_token_takes_never_exceed_the_limit(state: StateBackend) -> None:
    rng = random.Random(7)
    amounts = [float(rng.randint(1, 400)) for _ in range(200)]
    grants = await asyncio.gather(*(state.take([Bucket("hot:rpm", 60.0, 1.0), Bucket("hot:tpm", 5000.0, a)], 0.0,
                                                max_wait=0.0) for a in amounts))
    granted = [a for a, g in zip(amounts, grants, strict=True) if g.granted]
    assert 0 < sum(granted) <= 5000.0 and len(granted) <= 60
    assert await state.usage("hot:tpm", 0.0) == sum(granted)
    assert await state.usage("hot:rpm", 0.0) == len(granted)


def _max_in_any_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- circuit breakers -----------------------------------------------------------------
async def test_breaker_opens_after_the_threshold_and_rejects_with_retry_after(state: StateBackend) -> None:
    assert await state.breaker_acquire("t", 0.0, POLICY) == BreakerDecision(True)
    for i in range(2):
        snap = await state.breaker_record("t", False, float(i), POLICY, "ServerError")
        assert snap == BreakerSnapshot("closed", i + 1, None, None, "ServerError")
    opened = await state.breaker_record("t", False, 5.0, POLICY, "TimeoutError")
    assert opened == BreakerSnapshot("open", 3, 5.0, None, "TimeoutError")
    assert await state.breaker_acquire("t", 20.0, POLICY) == BreakerDecision(False, retry_after=15.0)
    assert (await state.breaker_snapshots())["t"] == opened


async def test_a_throttled_upstreams_wait_bounds_the_cooldown_of_the_circuit_it_opens(state: StateBackend) -> None:
    for _ in range(2):
        await state.breaker_record("t", False, 0.0, POLICY, "RateLimitError", retry_after=4.0)
    opened = await state.breaker_record("t", False, 1.0, POLICY, "RateLimitError", retry_after=4.0)
    assert opened == BreakerSnapshot("open", 3, 1.0, None, "RateLimitError", cooldown_seconds=4.0)
    assert await state.breaker_acquire("t", 3.0, POLICY) == BreakerDecision(False, retry_after=2.0)
    assert await state.breaker_acquire("t", 5.0, POLICY) == BreakerDecision(True, probe=True)
    # a failed probe reopens for the new wait (a second at least); a success forgets it
    reopened = await state.breaker_record("t", False, 6.0, POLICY, "RateLimitError", retry_after=0.0)
    assert reopened.cooldown_seconds == 1.0
    assert await state.breaker_acquire("t", 6.5, POLICY) == BreakerDecision(False, retry_after=0.5)
    assert await state.breaker_acquire("t", 7.0, POLICY) == BreakerDecision(True, probe=True)
    assert await state.breaker_record("t", True, 7.5, POLICY) == BreakerSnapshot()
    # a wait beyond the policy's cooldown leaves the policy's
    await state.breaker_acquire("t", 8.0, POLICY)
    for _ in range(3):
        longer = await state.breaker_record("t", False, 8.0, POLICY, "RateLimitError", retry_after=300.0)
    assert longer == BreakerSnapshot("open", 3, 8.0, None, "RateLimitError")
    assert (await state.breaker_snapshots())["t"] == longer
    assert await state.breaker_acquire("t", 37.0, POLICY) == BreakerDecision(False, retry_after=1.0)


async def test_one_probe_after_the_cooldown_then_the_probe_timeout(state: StateBackend) -> None:
    for _ in range(3):
        await state.breaker_record("t", False, 0.0, POLICY)
    assert await state.breaker_acquire("t", 30.0, POLICY) == BreakerDecision(True, probe=True)
    assert (await state.breaker_snapshots())["t"] == BreakerSnapshot("half_open", 3, 0.0, 30.0, None)
    assert await state.breaker_acquire("t", 32.5, POLICY) == BreakerDecision(False, retry_after=7.5)
    # the probe's caller vanished: the slot frees after the probe timeout
    assert await state.breaker_acquire("t", 40.0, POLICY) == BreakerDecision(True, probe=True)


async def test_probe_success_closes_and_failure_reopens(state: StateBackend) -> None:
    for _ in range(3):
        await state.breaker_record("ok", False, 0.0, POLICY)
        await state.breaker_record("bad", False, 0.0, POLICY)
    await state.breaker_acquire("ok", 31.0, POLICY)
    await state.breaker_acquire("bad", 31.0, POLICY)
    assert await state.breaker_record("ok", True, 32.0, POLICY) == BreakerSnapshot()
    reopened = await state.breaker_record("bad", False, 33.0, POLICY, "ServerError")
    assert reopened == BreakerSnapshot("open", 4, 33.0, None, "ServerError")
    assert await state.breaker_acquire("bad", 40.0, POLICY) == BreakerDecision(False, retry_after=23.0)


async def test_a_late_failure_keeps_an_open_breaker_open(state: StateBackend) -> None:
    for _ in range(3):
        await state.breaker_record("t", False, 1.0, POLICY)
    late = await state.breaker_record("t", False, 4.0, POLICY, "ConnectError")
    assert late == BreakerSnapshot("open", 4, 1.0, None, "ConnectError")


async def test_success_resets_the_count(state: StateBackend) -> None:
    await state.breaker_record("t", False, 0.0, POLICY, "ServerError")
    await state.breaker_record("t", False, 0.0, POLICY, "ServerError")
    await state.breaker_record("t", True, 0.0, POLICY)
    await state.breaker_record("t", False, 0.0, POLICY, "")
    assert (await state.breaker_snapshots())["t"] == BreakerSnapshot("closed", 1, None, None, "")


async def test_abandon_frees_the_probe_slot_only(state: StateBackend) -> None:
    for _ in range(3):
        await state.breaker_record("t", False, 0.0, POLICY)
    await state.breaker_acquire("t", 30.0, POLICY)
    await state.breaker_abandon("t")
    assert (await state.breaker_snapshots())["t"] == BreakerSnapshot("half_open", 3, 0.0, None, None)
    assert await state.breaker_acquire("t", 30.5, POLICY) == BreakerDecision(True, probe=True)
    await state.breaker_abandon("never-seen")
    await state.breaker_record("closed-one", False, 0.0, POLICY)
    await state.breaker_abandon("closed-one")
    snaps = await state.breaker_snapshots()
    assert "never-seen" not in snaps and snaps["closed-one"].consecutive_failures == 1


async def test_a_disabled_breaker_always_allows(state: StateBackend) -> None:
    off = BreakerPolicy(failure_threshold=1, enabled=False)
    await state.breaker_record("t", False, 0.0, off)
    assert (await state.breaker_snapshots())["t"].state == "open"
    assert await state.breaker_acquire("t", 1.0, off) == BreakerDecision(True)


async def test_snapshots_list_every_target_acquired(state: StateBackend) -> None:
    assert await state.breaker_snapshots() == {}
    await state.breaker_acquire("a/x", 0.0, POLICY)
    await state.breaker_acquire("b|pipe", 0.0, POLICY)
    await state.breaker_record("b|pipe", False, 0.0, POLICY, "Odd|Error")
    assert await state.breaker_snapshots() == {
        "a/x": BreakerSnapshot(), "b|pipe": BreakerSnapshot("closed", 1, None, None, "Odd|Error")}


# -- latency averages -----------------------------------------------------------------
async def test_latency_is_an_exponential_moving_average(state: StateBackend) -> None:
    await state.record_latency("a", 100.0)
    await state.record_latency("a", 200.0)
    await state.record_latency("b", 50.0, alpha=0.5)
    await state.record_latency("b", 150.0, alpha=0.5)
    assert await state.latencies(["a", "b", "c"]) == {"a": 0.3 * 200.0 + 0.7 * 100.0, "b": 100.0}
    assert await state.latencies([]) == {}


# -- both backends side by side -------------------------------------------------------
_OPS = st.lists(st.one_of(
    st.tuples(st.just("take"), st.floats(0, 40), st.sampled_from([(), ("x",), ("y",), ("x", "y")]),
              st.integers(1, 60), st.sampled_from([0.0, 10.0, 90.0, float("inf")])),
    st.tuples(st.just("settle"), st.integers(0, 30), st.integers(-5, 80)),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("acquire"), st.floats(0, 40), st.sampled_from(["p", "q"])),
    st.tuples(st.just("record"), st.floats(0, 40), st.sampled_from(["p", "q"]), st.booleans()),
    st.tuples(st.just("abandon"), st.sampled_from(["p", "q"])),
    st.tuples(st.just("latency"), st.sampled_from(["p", "q"]), st.floats(0.1, 5000)),
    st.tuples(st.just("admit"), st.floats(0, 40), st.sampled_from([(), ("x",), ("y",), ("x", "y")]),
              st.integers(1, 60), st.sampled_from([0.0, 10.0, 90.0]), st.sampled_from([0.0, 0.25, 0.5])),
    st.tuples(st.just("close"), st.integers(0, 30), st.sampled_from([None, 0, 40]), st.sampled_from([0.0, 0.1])),
), min_size=1, max_size=40)


async def _replay(backend: StateBackend, ops: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``ops`` with a clock that only moves forward; return every observable answer."""
    limits = {"x": Bucket("x:tpm", 100.0, 0.0), "y": Bucket("y:rpm", 3.0, 1.0)}
    policy = BreakerPolicy(failure_threshold=2, cooldown_seconds=20.0, probe_timeout_seconds=15.0)
    now, tickets, out = 0.0, list[str](), list[Any]()
    calls: list[object] = []
    await backend.budget_seed("route:r|total", 0.0)
    for op in ops:
        kind = op[0]
        if kind == "take":
            _, gap, names, amount, max_wait = op
            now += gap
            buckets = [Bucket(limits[n].key, limits[n].limit, float(amount) if n == "x" else 1.0) for n in names]
            grant = await backend.take(buckets, now, max_wait)
            if grant.ticket:
                tickets.append(grant.ticket)
            out.append((grant.granted, grant.wait, grant.limiting_key, grant.at))
        elif kind in ("settle", "release") and tickets:
            ticket = tickets[op[1] % len(tickets)]
            await (backend.settle(ticket, {"x:tpm": float(op[2])}) if kind == "settle" else backend.release(ticket))
        elif kind == "acquire":
            now += op[1]
            out.append(await backend.breaker_acquire(op[2], now, policy))
        elif kind == "record":
            now += op[1]
            out.append(await backend.breaker_record(op[2], op[3], now, policy, None if op[3] else "E"))
        elif kind == "abandon":
            await backend.breaker_abandon(op[1])
        elif kind == "latency":
            await backend.record_latency(op[1], op[2])
        elif kind == "admit":
            _, gap, names, amount, max_wait, usd = op
            now += gap
            buckets = [Bucket(limits[n].key, limits[n].limit, float(amount) if n == "x" else 1.0) for n in names]
            adm = await backend.admit(buckets, [Hold("route:r|total", 1.0, usd)] if usd else [], now, max_wait)
            if adm.ticket is not None:
                calls.append(adm.ticket)
            out.append((adm.granted, adm.wait, adm.limiting_key, round(adm.spent, 9), round(adm.reserved, 9),
                        adm.unseeded))
        elif kind == "close" and calls:
            _, which, tokens, cost = op
            await backend.close(calls[which % len(calls)], None if tokens is None else {"x:tpm": float(tokens)}, cost)
        counter = await backend.budget_usage("route:r|total")   # Redis adds in long double: 9 places
        out.append((await backend.usage("x:tpm", now), await backend.usage("y:rpm", now),
                    counter and tuple(round(x, 9) for x in counter)))
    out.append(await backend.breaker_snapshots())
    out.append(await backend.latencies(["p", "q"]))
    return out


@pytest.mark.redis
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_OPS)
def test_redis_answers_exactly_as_memory_does(ops: list[tuple[Any, ...]]) -> None:
    async def both() -> tuple[list[Any], list[Any]]:
        async with AsyncExitStack() as stack:
            redis_backend = await stack.enter_async_context(redis_state())
            # exact arithmetic: Redis logs every admission; memory's slots (window.py) are off
            return await _replay(MemoryState(slots=0), ops), await _replay(redis_backend, ops)

    expected, actual = asyncio.run(both())
    assert actual == expected


async def test_a_failed_probe_reopens_even_after_its_first_output_closed_the_circuit(state: StateBackend) -> None:
    for i in range(3):
        await state.breaker_record("t", False, float(i), POLICY, "ServerError")
    decision = await state.breaker_acquire("t", 40.0, POLICY)
    assert decision.allowed and decision.probe
    assert await state.breaker_record("t", True, 41.0, POLICY) == BreakerSnapshot()   # its first token
    reopened = await state.breaker_record("t", False, 42.0, POLICY, "ReadError", probe=True)
    assert reopened.state == "open" and reopened.opened_at == 42.0 and reopened.last_error == "ReadError"
    assert not (await state.breaker_acquire("t", 43.0, POLICY)).allowed


async def test_each_bucket_waits_no_longer_than_its_own_max_wait(state: StateBackend) -> None:
    """Buckets taken together wait by their own rules (a key's never, its route's up to its
    max_wait): one that alone would make the call wait past its own bound refuses it, even
    when the operation's bound allows the wait."""
    never = Bucket("key:rpm", 1.0, 1.0, 0.0)
    assert (await state.take([rpm("route", 1.0), never], 0.0, max_wait=120.0)).granted
    refused = await state.take([rpm("other", 1.0), never], 1.0, max_wait=120.0)
    assert not refused.granted and refused.limiting_key == "key:rpm" and refused.wait == 59.0
    assert await state.usage("other:rpm", 1.0) == 0.0                 # all or nothing
    waits = await state.take([rpm("route", 1.0), Bucket("key2:rpm", 1.0, 1.0, 0.0)], 2.0, max_wait=120.0)
    assert waits.granted and waits.wait == 58.0                       # the key has room: the route waits
    adm = await state.admit([rpm("r2", 1.0), never], [], 3.0, 120.0)
    assert not adm.granted and adm.limiting_key == "key:rpm" and adm.wait == 57.0
    assert await state.usage("r2:rpm", 3.0) == 0.0
    first = await state.admit([], [], 4.0, 0.0, attempt=ask(buckets=(rpm("p", 1.0),), max_wait=120.0))
    assert first.attempt is not None and first.attempt.grant is not None and first.attempt.grant.granted
    own = await state.admit([], [], 5.0, 0.0, attempt=ask(buckets=(Bucket("p:rpm", 1.0, 1.0, 10.0),),
                                                           max_wait=120.0))
    assert own.attempt is not None and own.attempt.grant is not None and not own.attempt.grant.granted
    assert own.attempt.grant.wait == 59.0 and own.attempt.grant.limiting_key == "p:rpm"


# -- one call's admission: buckets and budget holds together --------------------------
def hold(amount: float, key: str = "route:r|total", limit: float = 1.0) -> Hold:
    return Hold(key, limit, amount)


async def test_admit_asks_for_an_unseeded_budget_and_takes_nothing(state: StateBackend) -> None:
    adm = await state.admit([rpm()], [hold(0.3)], 0.0, 0.0)
    assert not adm.granted and adm.unseeded == ("route:r|total",)
    assert await state.usage("b:rpm", 0.0) == 0.0 and await state.budget_usage("route:r|total") is None
    await state.budget_seed("route:r|total", 0.25)
    await state.budget_seed("route:r|total", 99.0)           # seeding twice keeps the first figure
    assert await state.budget_usage("route:r|total") == (0.25, 0.0)


async def test_admit_reserves_until_the_limit_then_reports_the_counter(state: StateBackend) -> None:
    await state.budget_seed("route:r|total", 0.25)
    first = await state.admit([rpm()], [hold(0.3)], 0.0, 0.0)
    second = await state.admit([rpm()], [hold(0.3)], 1.0, 0.0)
    assert first.granted and second.granted and first.ticket is not None
    refused = await state.admit([rpm()], [hold(0.3)], 2.0, 0.0)
    assert not refused.granted and refused.limiting_key == "route:r|total"
    assert refused.spent == pytest.approx(0.25) and refused.reserved == pytest.approx(0.6)
    assert await state.usage("b:rpm", 2.0) == 2.0               # the refused call took no bucket either
    await state.close(first.ticket, {}, 0.1)                    # real cost below the reservation
    await state.close(first.ticket, {}, 0.1)                    # closing twice does nothing
    assert await state.budget_usage("route:r|total") == (pytest.approx(0.35), pytest.approx(0.3))
    assert (await state.admit([], [hold(0.3)], 3.0, 0.0)).granted  # the difference came back


async def test_raising_a_counter_keeps_its_reservations_and_never_lowers_it(state: StateBackend) -> None:
    """A budget that starts to apply to earlier spend (``Budgets.recount``): a counter left from
    an earlier time it applied is raised to the ledger's figure, not trusted as it stands."""
    await state.budget_seed("key:k|total", 0.1)
    held = await state.admit([], [hold(0.3, "key:k|total")], 0.0, 0.0)
    await state.budget_raise("key:k|total", 0.5)
    assert await state.budget_usage("key:k|total") == (pytest.approx(0.5), pytest.approx(0.3))
    refused = await state.admit([], [hold(0.3, "key:k|total")], 1.0, 0.0)
    assert not refused.granted and refused.spent == pytest.approx(0.5)   # 0.5 + 0.3 + 0.3 > 1
    await state.budget_raise("key:k|total", 0.2)                          # never lowers it
    await state.close(held.ticket, {}, 0.25)
    assert await state.budget_usage("key:k|total") == (pytest.approx(0.75), pytest.approx(0.0))
    await state.budget_raise("key:k|2025-01-31", 0.4)                     # absent: made at that figure
    assert await state.budget_usage("key:k|2025-01-31") == (pytest.approx(0.4), 0.0)
    assert not (await state.admit([], [hold(0.7, "key:k|2025-01-31")], 2.0, 0.0)).granted


async def test_a_full_bucket_refuses_before_any_budget_is_reserved(state: StateBackend) -> None:
    await state.budget_seed("route:r|total", 0.0)
    for now in (0.0, 1.0, 2.0):
        assert (await state.admit([rpm()], [hold(0.1)], now, 0.0)).granted
    refused = await state.admit([rpm()], [hold(0.1)], 3.0, 0.0)
    assert not refused.granted and refused.limiting_key == "b:rpm" and refused.wait == 57.0
    assert await state.budget_usage("route:r|total") == (0.0, pytest.approx(0.3))


async def test_close_settles_tokens_and_releases_on_none(state: StateBackend) -> None:
    await state.budget_seed("key:k|total", 0.0)
    tpm = Bucket("k:tpm", 1000.0, 600.0)
    adm = await state.admit([rpm("k"), tpm], [hold(0.5, "key:k|total")], 0.0, 0.0)
    await state.close(adm.ticket, {"k:tpm": 100.0}, 0.2)
    assert await state.usage("k:tpm", 0.0) == 100.0 and await state.usage("k:rpm", 0.0) == 1.0
    again = await state.admit([rpm("k"), tpm], [hold(0.5, "key:k|total")], 1.0, 0.0)
    await state.close(again.ticket, None, 0.0)                   # never reached the upstream
    assert await state.usage("k:tpm", 1.0) == 100.0 and await state.usage("k:rpm", 1.0) == 1.0
    assert await state.budget_usage("key:k|total") == (pytest.approx(0.2), 0.0)


async def test_two_hundred_concurrent_admissions_never_overrun_a_budget(state: StateBackend) -> None:
    await state.budget_seed("route:r|total", 0.0)
    results = await asyncio.gather(*(state.admit([], [hold(0.007, limit=0.1)], 0.0, 0.0) for _ in range(200)))
    assert sum(r.granted for r in results) == 14                 # 14 × 0.007 = 0.098 <= 0.1 < 15 × 0.007
    spent, reserved = await state.budget_usage("route:r|total") or (0.0, 0.0)
    assert spent == 0.0 and reserved == pytest.approx(0.098)


@pytest.mark.redis
async def test_a_dead_process_reservation_is_given_back_after_its_ttl() -> None:
    from cloverleaf.gateway.state.redis import RESERVATION_TTL_SECONDS

    async with redis_state() as backend:
        await backend.budget_seed("route:r|total", 0.0)
        assert (await backend.admit([], [hold(0.8)], 0.0, 0.0)).granted   # never closed: kill -9
        assert not (await backend.admit([], [hold(0.8)], 10.0, 0.0)).granted
        late = await backend.admit([], [hold(0.8)], RESERVATION_TTL_SECONDS + 1.0, 0.0)
        assert late.granted
        assert await backend.budget_usage("route:r|total") == (0.0, pytest.approx(0.8))


# -- the first attempt admitted with its call ------------------------------------------
def ask(key: str = "t", buckets: tuple[Bucket, ...] = (), max_wait: float = 0.0) -> AttemptAsk:
    return AttemptAsk(key, POLICY, list(buckets), max_wait)


async def test_admit_takes_the_first_attempts_breaker_and_buckets_too(state: StateBackend) -> None:
    adm = await state.admit([rpm("call")], [], 0.0, 0.0, attempt=ask(buckets=(rpm("prov", 1.0),)))
    assert adm.granted and adm.attempt is not None
    assert adm.attempt.decision == BreakerDecision(True)
    grant = adm.attempt.grant
    assert grant is not None and grant.granted and grant.wait == 0.0 and grant.ticket is not None
    assert await state.usage("prov:rpm", 0.0) == 1.0 and await state.usage("call:rpm", 0.0) == 1.0
    await state.release(grant.ticket)                          # an attempt ticket like take()'s
    assert await state.usage("prov:rpm", 0.0) == 0.0
    again = await state.admit([], [], 1.0, 0.0, attempt=ask(buckets=(rpm("prov", 1.0),)))
    assert again.attempt is not None and again.attempt.grant is not None and again.attempt.grant.granted
    full = await state.admit([], [], 2.0, 0.0, attempt=ask(buckets=(rpm("prov", 1.0),)))
    assert full.granted and full.attempt is not None and full.attempt.grant is not None
    assert full.attempt.grant.granted is False and full.attempt.grant.wait == 59.0
    assert full.attempt.grant.limiting_key == "prov:rpm" and full.attempt.grant.ticket is None


async def test_an_open_circuit_refuses_the_attempt_but_not_the_call(state: StateBackend) -> None:
    for i in range(3):
        await state.breaker_record("t", False, float(i), POLICY, "ServerError")
    adm = await state.admit([rpm("call")], [], 10.0, 0.0, attempt=ask(buckets=(rpm("prov"),)))
    assert adm.granted and adm.attempt is not None and adm.attempt.grant is None
    assert adm.attempt.decision.allowed is False and adm.attempt.decision.retry_after == pytest.approx(22.0)
    assert await state.usage("prov:rpm", 10.0) == 0.0 and await state.usage("call:rpm", 10.0) == 1.0


async def test_a_probe_refused_by_its_buckets_frees_the_probe_slot(state: StateBackend) -> None:
    await state.take([rpm("prov", 1.0)], 0.0, 0.0)
    for i in range(3):
        await state.breaker_record("t", False, float(i), POLICY, "ServerError")
    adm = await state.admit([], [], 40.0, 0.0, attempt=ask(buckets=(rpm("prov", 1.0),)))
    assert adm.attempt is not None and adm.attempt.decision.probe
    assert adm.attempt.grant is not None and not adm.attempt.grant.granted and adm.attempt.grant.wait == 20.0
    snap = (await state.breaker_snapshots())["t"]
    assert snap.state == "half_open" and snap.probe_started_at is None   # the next call may probe


async def test_the_attempt_is_placed_no_earlier_than_its_call(state: StateBackend) -> None:
    await state.take([rpm("call", 1.0)], 0.0, 0.0)
    adm = await state.admit([rpm("call", 1.0)], [], 10.0, 60.0, attempt=ask(buckets=(rpm("prov"),), max_wait=60.0))
    assert adm.granted and adm.wait == 50.0
    assert adm.attempt is not None and adm.attempt.grant is not None
    assert adm.attempt.grant.granted and adm.attempt.grant.wait == 50.0 and adm.attempt.grant.at == 60.0
    none = await state.admit([], [], 70.0, 0.0, attempt=ask())
    assert none.attempt is not None and none.attempt.grant is not None and none.attempt.grant.granted


async def test_the_attempt_max_wait_bounds_only_the_wait_it_adds_to_its_call(state: StateBackend) -> None:
    """A call that waits for its route's room (up to the route's max_wait) is not refused after
    that wait by its first attempt's shorter bound (0 when the target has no limits): the
    attempt's max_wait — and each of its buckets' — counts only the wait it adds."""
    await state.take([rpm("call", 1.0)], 0.0, 0.0)
    bare = await state.admit([rpm("call", 1.0)], [], 10.0, 60.0, attempt=ask())
    assert bare.granted and bare.wait == 50.0
    assert bare.attempt is not None and bare.attempt.grant is not None
    assert bare.attempt.grant.granted and bare.attempt.grant.wait == 50.0
    roomy = Bucket("prov:rpm", 100.0, 1.0, 1.0)                        # room, and a 1 s bound of its own
    with_room = await state.admit([rpm("call2", 1.0)], [], 10.0, 60.0, attempt=ask(buckets=(roomy,), max_wait=1.0))
    assert with_room.granted and with_room.wait == 0.0
    await state.take([rpm("call3", 1.0)], 10.0, 0.0)
    waited = await state.admit([rpm("call3", 1.0)], [], 20.0, 60.0, attempt=ask(buckets=(roomy,), max_wait=1.0))
    assert waited.granted and waited.wait == 50.0
    grant = waited.attempt.grant if waited.attempt is not None else None
    assert grant is not None and grant.granted and grant.wait == 50.0 and grant.at == 70.0
    for key in ("call4", "call5"):
        await state.take([rpm(key, 1.0)], 0.0, 0.0)                    # room again at 60
    await state.take([rpm("p2", 1.0)], 0.5, 0.0)                       # room again at 60.5: 0.5 s more
    late = await state.admit([rpm("call4", 1.0)], [], 10.0, 60.0,
                             attempt=ask(buckets=(Bucket("p2:rpm", 1.0, 1.0, 1.0),), max_wait=1.0))
    grant = late.attempt.grant if late.attempt is not None else None
    assert grant is not None and grant.granted and grant.wait == 50.5 and grant.at == 60.5
    await state.take([rpm("p3", 1.0)], 5.0, 0.0)                       # room again at 65: 5 s more
    over = await state.admit([rpm("call5", 1.0)], [], 10.0, 60.0,
                             attempt=ask(buckets=(Bucket("p3:rpm", 1.0, 1.0, 1.0),), max_wait=1.0))
    assert over.granted and over.wait == 50.0
    refused = over.attempt.grant if over.attempt is not None else None
    assert refused is not None and not refused.granted and refused.wait == 55.0
    assert refused.limiting_key == "p3:rpm" and refused.ticket is None


async def test_finish_settles_a_successful_call_in_one_operation(state: StateBackend) -> None:
    await state.budget_seed("route:r|total", 0.0)
    tpm, prov = Bucket("call:tpm", 1000.0, 500.0), Bucket("prov:tpm", 1000.0, 500.0)
    for i in range(3):
        await state.breaker_record("t", False, float(i), POLICY, "ServerError")
    adm = await state.admit([tpm], [hold(0.5)], 40.0, 0.0, attempt=ask(buckets=(prov,)))
    assert adm.attempt is not None and adm.attempt.decision.probe and adm.attempt.grant is not None
    await state.finish(adm.ticket, {"call:tpm": 120.0}, 0.2, adm.attempt.grant.ticket, {"prov:tpm": 120.0},
                       "t", 41.0, POLICY, 250.0)
    assert await state.usage("call:tpm", 41.0) == 120.0 and await state.usage("prov:tpm", 41.0) == 120.0
    assert await state.budget_usage("route:r|total") == (pytest.approx(0.2), 0.0)
    assert (await state.breaker_snapshots())["t"] == BreakerSnapshot()           # the probe closed it
    assert await state.latencies(["t"]) == {"t": 250.0}
    await state.finish(None, {}, 0.0, None, {}, "t", 42.0, POLICY, 50.0)       # an open call: no tickets
    assert await state.latencies(["t"]) == {"t": pytest.approx(0.3 * 50.0 + 0.7 * 250.0)}


@pytest.mark.parametrize("ending", ["close", "finish"])
async def test_each_hold_of_a_call_can_be_charged_its_own_cost(state: StateBackend, ending: str) -> None:
    """A model budget whose model did not answer the call (``model_budgets.charges``) is charged
    0 and its reservation released, while the call's other budgets are charged its cost — in the
    same operation, the buckets settled as ever; closing twice still does nothing."""
    for key in ("route:echo|total", "route:other|total", "key:k|total"):
        await state.budget_seed(key, 0.1)
    tpm = Bucket("k:tpm", 1000.0, 600.0)
    adm = await state.admit([tpm], [hold(0.3, "route:echo|total"), hold(0.3, "route:other|total"),
                                    hold(0.3, "key:k|total")], 0.0, 0.0, attempt=ask())
    if ending == "close":
        await state.close(adm.ticket, {"k:tpm": 100.0}, 0.2, [0.2, 0.0, 0.2])
        await state.close(adm.ticket, {"k:tpm": 100.0}, 0.2, [0.2, 0.0, 0.2])
    else:
        assert adm.attempt is not None and adm.attempt.grant is not None
        await state.finish(adm.ticket, {"k:tpm": 100.0}, 0.2, adm.attempt.grant.ticket, {}, "t", 1.0, POLICY,
                           20.0, [0.2, 0.0, 0.2])
    assert await state.usage("k:tpm", 1.0) == 100.0
    assert [await state.budget_usage(k) for k in ("route:echo|total", "route:other|total", "key:k|total")] == [
        (pytest.approx(0.3), 0.0), (pytest.approx(0.1), 0.0), (pytest.approx(0.3), 0.0)]
