"""A scope's rpm and tpm taken as one two-lane bucket (``state.Lanes``) answer exactly as the
two buckets they stand for: in memory (one log, ``window.PairLog``) and in Redis (which takes
them as the two buckets). Random operation sequences are replayed both ways and every
observable answer compared: grants and their waits, the limiting key, where an admission is
placed, what each window holds after settlements, releases and cache-hit give-backs.
"""

from __future__ import annotations

import asyncio
import math
from contextlib import AsyncExitStack
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloverleaf._context import KeyPolicy
from cloverleaf.gateway.clock import ManualClock
from cloverleaf.gateway.config import parse_limits, parse_route
from cloverleaf.gateway.ratelimit import RateLimiter, never_fits, upstream_keys
from cloverleaf.gateway.state import AnyBucket, Bucket, Hold, Lanes, StateBackend, flatten
from cloverleaf.gateway.state.memory import MemoryState

from .redis_support import redis_state

#: scope "s": rpm 3 and tpm 100, waiting up to 30 s; scope "r": rpm 2 only; "z:tpm" a single bucket
_LANES = {"s": (3.0, 100.0, 30.0), "r": (2.0, math.inf, 0.0)}

_OPS = st.lists(st.one_of(
    st.tuples(st.just("take"), st.floats(0, 40), st.sampled_from([("s",), ("r",), ("s", "r"), ("s", "z")]),
              st.integers(1, 120), st.sampled_from([0.0, 10.0, 90.0, float("inf")])),
    st.tuples(st.just("settle"), st.integers(0, 30), st.integers(-5, 80)),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("admit"), st.floats(0, 40), st.sampled_from([("s",), ("r",), ("s", "r"), ("s", "z")]),
              st.integers(1, 120), st.sampled_from([0.0, 10.0, 90.0]), st.sampled_from([0.0, 0.25])),
    st.tuples(st.just("close"), st.integers(0, 30), st.sampled_from([None, "hit", 0, 40]),
              st.sampled_from([0.0, 0.1])),
), min_size=1, max_size=40)


def _buckets(names: tuple[str, ...], tokens: float, lanes: bool) -> list[AnyBucket]:
    out: list[AnyBucket] = []
    for name in names:
        if name == "z":
            out.append(Bucket("z:tpm", 150.0, tokens, 20.0))
            continue
        rpm, tpm, wait = _LANES[name]
        pair = Lanes(name, rpm, tpm, tokens, wait, f"{name}:rpm", f"{name}:tpm")
        out += [pair] if lanes else pair.buckets()
    return out


async def _replay(backend: StateBackend, ops: list[tuple[Any, ...]], lanes: bool) -> list[Any]:
    """Run ``ops`` with a clock that only moves forward, the scopes as two-lane buckets or as
    the buckets they stand for; return every observable answer."""
    now, tickets, calls, out = 0.0, list[str](), list[object](), list[Any]()
    await backend.budget_seed("route:r|total", 0.0)
    for op in ops:
        kind = op[0]
        if kind == "take":
            _, gap, names, tokens, max_wait = op
            now += gap
            grant = await backend.take(_buckets(names, float(tokens), lanes), now, max_wait)
            if grant.ticket:
                tickets.append(grant.ticket)
            out.append((grant.granted, grant.wait, grant.limiting_key, grant.at))
        elif kind in ("settle", "release") and tickets:
            ticket = tickets[op[1] % len(tickets)]
            await (backend.settle(ticket, {"s:tpm": float(op[2]), "z:tpm": float(op[2])}) if kind == "settle"
                   else backend.release(ticket))
        elif kind == "admit":
            _, gap, names, tokens, max_wait, usd = op
            now += gap
            adm = await backend.admit(_buckets(names, float(tokens), lanes),
                                      [Hold("route:r|total", 1.0, usd)] if usd else [], now, max_wait)
            if adm.ticket is not None:
                calls.append(adm.ticket)
            out.append((adm.granted, adm.wait, adm.limiting_key, round(adm.spent, 9), round(adm.reserved, 9)))
        elif kind == "close" and calls:
            _, which, tokens, cost = op
            amounts = (None if tokens is None else {"s:rpm": 0.0, "s:tpm": 0.0, "r:rpm": 0.0} if tokens == "hit"
                       else {"s:tpm": float(tokens), "z:tpm": float(tokens)})
            await backend.close(calls[which % len(calls)], amounts, cost)
        counter = await backend.budget_usage("route:r|total")
        out.append(tuple([round(await backend.usage(k, now), 9) for k in ("s:rpm", "s:tpm", "r:rpm", "r:tpm", "z:tpm")]) +
                   (counter and tuple(round(x, 9) for x in counter),))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_OPS)
def test_two_lanes_in_memory_answer_as_the_two_buckets_do(ops: list[tuple[Any, ...]]) -> None:
    async def both(slots: int) -> tuple[list[Any], list[Any]]:
        return await _replay(MemoryState(slots=slots), ops, True), await _replay(MemoryState(slots=slots), ops, False)

    for slots in (0, 600):   # exact, and admissions sharing slots as the gateway runs it
        lanes, buckets = asyncio.run(both(slots))
        assert lanes == buckets


@pytest.mark.redis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_OPS)
def test_redis_takes_two_lanes_as_memory_does(ops: list[tuple[Any, ...]]) -> None:
    async def both() -> tuple[list[Any], list[Any]]:
        async with AsyncExitStack() as stack:
            redis_backend = await stack.enter_async_context(redis_state())
            return await _replay(MemoryState(slots=0), ops, True), await _replay(redis_backend, ops, True)

    expected, actual = asyncio.run(both())
    assert actual == expected


def test_a_calls_route_and_key_limits_are_one_two_lane_bucket_a_scope() -> None:
    """Why: four buckets a call (rpm and tpm of its route and of its key) cost four log walks,
    slots and settlements; one per scope costs two. The refusals and settlement keep the
    buckets' keys."""
    limits = parse_limits({"route:chat": {"rpm": 60, "tpm": 1000, "max_wait": 5}})
    limiter = RateLimiter(limits, MemoryState(), ManualClock())
    route = parse_route("chat", {"targets": ["fake/echo"]})
    key = KeyPolicy("k_1", rpm=10)
    buckets, max_wait, token_keys, too_large = limiter.call_buckets(route, key, 200)
    assert buckets == [Lanes("route:chat", 60.0, 1000.0, 200.0, 5.0, "route:chat:rpm", "route:chat:tpm"),
                       Lanes("key:k_1", 10.0, math.inf, 200.0, 0.0, "key:k_1:rpm", "key:k_1:tpm")]
    assert (max_wait, token_keys, too_large) == (5.0, ("route:chat:tpm",), False)
    # a backend that keeps the windows apart sees the buckets it always saw
    assert flatten(buckets) == [Bucket("route:chat:rpm", 60.0, 1.0, 5.0), Bucket("route:chat:tpm", 1000.0, 200.0, 5.0),
                                Bucket("key:k_1:rpm", 10.0, 1.0, 0.0)]
    assert upstream_keys(buckets) == ("route:chat:rpm", "route:chat:tpm")
    too_many = limiter.call_buckets(route, key, 1001)
    assert too_many[3]
    refusal = never_fits(too_many[0])
    assert refusal is not None and (refusal.scope, refusal.kind) == ("route:chat", "tpm")


def test_a_lane_without_a_limit_takes_nothing_so_a_limit_given_later_starts_empty() -> None:
    """Why: an unlimited token lane's amounts are never settled (only limited lanes are), so a
    tpm given to the scope later counted estimates of calls that used almost nothing; Redis,
    which has no bucket for such a lane, admits. Both now answer the same."""
    async def run() -> tuple[bool, bool, float]:
        state = MemoryState()
        before = await state.take([Lanes("key:k", 10.0, math.inf, 5000.0, 0.0, "key:k:rpm", "key:k:tpm")], 0.0, 0.0)
        after = await state.take([Lanes("key:k", 10.0, 100.0, 50.0, 0.0, "key:k:rpm", "key:k:tpm")], 1.0, 0.0)
        return before.granted, after.granted, await state.usage("key:k:tpm", 1.0)

    assert asyncio.run(run()) == (True, True, 50.0)
