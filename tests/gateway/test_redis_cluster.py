"""Governance state and the response cache on a real Redis Cluster (``redis+cluster://``).

Before, a ``redis://`` URL to a Cluster node started without a word and answered every governed
call with 503 (CROSSSLOT: a script's keys spread over slots), and the cache never stored. These
tests run two gateways (two clients, as two replicas would) on a three-primary cluster the
session starts (``redis_cluster`` fixture), and check that a plain URL to a node is refused.
The state contract suite also runs against the cluster (``test_state_contract.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.crc import key_slot

from cloverleaf._errors import CircuitOpen, ConfigError, RateLimitExceeded, ServerError
from cloverleaf.gateway import ManualClock
from cloverleaf.gateway.cache.backends import RedisBackend
from cloverleaf.gateway.redis_cluster import (
    CACHE_SHARDS,
    cache_shard_prefix,
    cluster_url,
    one_slot_prefix,
    refuse_plain_urls_to_a_cluster,
)
from cloverleaf.gateway.state import Bucket, Hold, open_state
from cloverleaf.gateway.state.redis import RedisState

from .conftest import Harness, chat_request, upstream
from .redis_support import fresh_prefix, redis_state
from .test_redis_shared import gateway_on, max_in_any_window, stamp_upstream_calls


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


# -- key layout (no server) -----------------------------------------------------------
@pytest.mark.parametrize("prefix", ["cloverleaf:", "", "}odd", "a{b", "x}y{", "{own}:", "team-7:"])
def test_every_state_key_under_one_prefix_shares_one_slot(prefix: str) -> None:
    tagged = one_slot_prefix(prefix)
    names = [f"{tagged}{kind}:{bucket}" for kind in ("w", "wm", "b", "r")
             for bucket in ("key:k1:rpm", "route:{smart}:tpm", "provider:fake|2026-01", "}{", "{x}")]
    names += [f"{tagged}circuits", f"{tagged}circuits:failing", f"{tagged}latency"]
    assert len({slot(name) for name in names}) == 1


def test_a_cache_entry_shares_its_shards_index_slot_and_entries_spread() -> None:
    prefix = "cloverleaf:cache:"
    slots = set()
    for i in range(200):
        home = cache_shard_prefix(prefix, f"entry-{i}")
        assert slot(f"{home}e:entry-{i}") == slot(f"{home}index")
        slots.add(slot(f"{home}index"))
    assert len(slots) == CACHE_SHARDS


def test_a_cluster_url_is_read_by_its_scheme_and_has_database_0_only() -> None:
    assert cluster_url("redis+cluster://h:7000", "[state]") == "redis://h:7000"
    assert cluster_url("rediss+cluster://u:pw@h:7000/0", "[state]") == "rediss://u:pw@h:7000/0"
    assert cluster_url("redis://h:6379/0", "[state]") is None
    with pytest.raises(ConfigError, match="only database 0"):
        cluster_url("redis+cluster://h:7000/3", "[cache]")
    assert isinstance(open_state("redis+cluster://h:7000"), RedisState)


# -- a plain URL to a Cluster node ----------------------------------------------------
async def test_a_plain_url_to_a_cluster_node_is_refused_with_the_url_to_use(redis_cluster: str) -> None:
    node = redis_cluster.removeprefix("redis+cluster://")
    plain = RedisState(f"redis://:secret-pw@{node}/0", prefix=fresh_prefix())
    try:
        with pytest.raises(ConfigError) as info:
            await plain.ping()
    finally:
        await plain.aclose()
    assert f'url = "redis+cluster://{node}"' in str(info.value) and "secret-pw" not in str(info.value)
    with pytest.raises(ConfigError, match=r"\[cache\] url = \"redis\+cluster://"):
        refuse_plain_urls_to_a_cluster({"[state]": "memory", "[cache]": f"redis://{node}?prefix=x"})


async def test_a_plain_url_to_a_cluster_node_says_so_when_a_call_meets_it(redis_cluster: str) -> None:
    node = redis_cluster.removeprefix("redis+cluster://")
    plain = RedisState(f"redis://{node}/0", prefix=fresh_prefix())
    buckets = [Bucket(f"b{i}:rpm", 10.0, 1.0) for i in range(8)]   # eight keys: some slot is elsewhere
    try:
        with pytest.raises(Exception, match=r"redis\+cluster://") as info:
            await plain.take(buckets, 0.0, 0.0)
    finally:
        await plain.aclose()
    assert type(info.value).__name__ == "StateUnavailable"


# -- two replicas on one cluster ------------------------------------------------------
@pytest.mark.redis
async def test_two_states_on_a_cluster_share_one_bucket_under_200_concurrent_takes(redis_cluster: str) -> None:
    prefix = fresh_prefix()
    async with redis_state(prefix, redis_cluster) as a, redis_state(prefix, redis_cluster) as b:
        bucket = Bucket("target:fake/echo:rpm", 60.0, 1.0)
        grants = await asyncio.gather(*((a if i % 2 else b).take([bucket], 0.0, 0.0) for i in range(200)))
        assert sum(g.granted for g in grants) == 60
        assert await a.usage(bucket.key, 0.0) == await b.usage(bucket.key, 0.0) == 60.0


@pytest.mark.redis
async def test_calls_past_a_clusters_connection_pool_queue_instead_of_failing(redis_cluster: str) -> None:
    """RedisCluster's per-node pool raises MaxConnectionsError when full (the single-node pool
    waits): a burst larger than the pool was a 503 for the calls past it."""
    state = RedisState(redis_cluster, prefix=fresh_prefix(), max_connections=2)
    try:
        bucket = Bucket("burst:rpm", 1000.0, 1.0)
        grants = await asyncio.gather(*(state.take([bucket], 0.0, 0.0) for _ in range(60)))
        assert all(g.granted for g in grants)
        await state.record_latency("t", 10.0)
        reads = await asyncio.gather(*(state.latencies(["t"]) for _ in range(30)),   # latency routing's read
                                     *(state.breaker_snapshots() for _ in range(30)))
        assert reads[0] == {"t": 10.0} and reads[-1] == {}
    finally:
        await state.clear()
        await state.aclose()


@pytest.mark.redis
async def test_two_states_on_a_cluster_never_overspend_one_budget(redis_cluster: str) -> None:
    prefix, key = fresh_prefix(), "route:smart|total"
    async with redis_state(prefix, redis_cluster) as a, redis_state(prefix, redis_cluster) as b:
        await a.budget_seed(key, 0.0)
        calls = [(a if i % 2 else b).admit([Bucket(f"key:k{i % 5}:rpm", 1000.0, 1.0)], [Hold(key, 1.0, 0.1)],
                                           0.0, 0.0) for i in range(100)]
        admitted = [adm for adm in await asyncio.gather(*calls) if adm.granted]
        assert len(admitted) == 10
        await asyncio.gather(*((a if i % 2 else b).close(adm.ticket, None, 0.1) for i, adm in enumerate(admitted)))
        spent, reserved = await b.budget_usage(key) or (0.0, 0.0)
        assert spent == pytest.approx(1.0) and reserved == pytest.approx(0.0)
        refused = await a.admit([], [Hold(key, 1.0, 0.1)], 1.0, 0.0)
        assert not refused.granted and refused.limiting_key == key


@pytest.mark.redis
async def test_two_gateways_on_a_cluster_never_exceed_60_rpm_together(harness: Harness, redis_cluster: str) -> None:
    prefix, clock, times = fresh_prefix(), ManualClock(), list[float]()
    limits = {"fake": {"rpm": 60, "tpm": 0, "max_wait": 0.0}}
    async with redis_state(prefix, redis_cluster) as state_a, redis_state(prefix, redis_cluster) as state_b:
        gateways = [gateway_on(harness, state, clock, name, limits=limits, budgets={"fake/echo": {"limit_usd": 5.0}})
                    for state, name in ((state_a, "a"), (state_b, "b"))]
        for gw in gateways:
            stamp_upstream_calls(gw, clock, times)

        async def one(i: int) -> str:
            try:
                return (await gateways[i % 2].achat("fake/echo", chat_request(f"call {i}"))).text
            except RateLimitExceeded:
                return "limited"

        tasks = [asyncio.ensure_future(one(i)) for i in range(150)]
        await clock.drive(*tasks)  # type: ignore[arg-type]
        ok = [t.result() for t in tasks if t.result() != "limited"]
    assert len(ok) == len(times) == 60 and max_in_any_window(times) == 60


@pytest.mark.redis
async def test_a_breaker_opened_by_one_gateway_on_a_cluster_is_open_for_the_other(harness: Harness,
                                                                                   redis_cluster: str) -> None:
    prefix, clock = fresh_prefix(), ManualClock()
    async with redis_state(prefix, redis_cluster) as state_a, redis_state(prefix, redis_cluster) as state_b:
        first = gateway_on(harness, state_a, clock, "a")
        second = gateway_on(harness, state_b, clock, "b")
        upstream(first).script.fail(500, times=5)
        for _ in range(5):
            with pytest.raises(ServerError):
                await first.achat("fake/echo", chat_request())
        with pytest.raises(CircuitOpen):
            await second.achat("fake/echo", chat_request())
        assert upstream(second).requests == []
        clock.advance(60)
        assert (await second.achat("fake/echo", chat_request("probe"))).text == "probe"
        assert (await state_a.breaker_snapshots())["fake/echo"].state == "closed"


@pytest.mark.redis
async def test_state_keys_carry_one_tag_and_clear_removes_them(redis_cluster: str) -> None:
    prefix = fresh_prefix()
    async with redis_state(prefix, redis_cluster) as state:
        assert state.prefix == "{" + prefix + "}"
        await state.take([Bucket("a:rpm", 5.0, 1.0), Bucket("b:tpm", 500.0, 10.0)], 0.0, 0.0)
        await state.breaker_record("t", False, 0.0, _policy())
        client = state._client()
        found = [k async for k in client.scan_iter(match="{" + prefix + "}*")]
        assert len(found) >= 5 and len({slot(k) for k in found}) == 1
    async with redis_state(prefix, redis_cluster) as again:
        assert [k async for k in again._client().scan_iter(match="{" + prefix + "}*")] == []


def _policy() -> Any:
    from cloverleaf.gateway.breaker import BreakerPolicy

    return BreakerPolicy(failure_threshold=3, cooldown_seconds=30.0, probe_timeout_seconds=10.0)


# -- the response cache ---------------------------------------------------------------
@pytest.mark.redis
async def test_the_cache_on_a_cluster_is_shared_spread_bounded_and_deletes(redis_cluster: str) -> None:
    prefix = f"{fresh_prefix()}cache:"
    one, other = RedisBackend(redis_cluster, 64, prefix), RedisBackend(redis_cluster, 64, prefix)
    try:
        for i in range(200):
            await one.put(f"k{i}", f"answer {i}".encode(), 60.0)
        assert await other.get("k199") == b"answer 199"   # another replica's entry
        nodes = {one._client().get_node_from_key(one._entry(f"k{i}")).port for i in range(200)}
        assert len(nodes) > 1                                # entries spread over the primaries
        await other.delete("k199")
        assert await one.get("k199") is None
        kept = [i for i in range(200) if await one.get(f"k{i}") is not None]
        assert 0 < len(kept) <= 64   # each of the 16 shards keeps its newest 4
        for name in ("k-new", "k-other", "k-third"):   # several entries: one pipeline checks them all
            await one.put(name, b"new", 60.0)
            await one.add_vector("scope", name, [1.0, 0.0], 60.0)
        await one.delete("k-other")
        assert sorted(await other.vectors("scope")) == [("k-new", [1.0, 0.0]), ("k-third", [1.0, 0.0])]
    finally:
        client = one._client()
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        for key in keys:
            await client.delete(key)
        await one.aclose()
        await other.aclose()


@pytest.mark.redis
@pytest.mark.parametrize("max_entries", [1, 5, 20])
async def test_the_cache_on_a_cluster_never_holds_more_than_max_entries(redis_cluster: str,
                                                                        max_entries: int) -> None:
    """Each shard kept at least one entry, so a cache bounded below the shard count (16) held
    16 entries on a Cluster, and e.g. 20 held 16: the bound is the whole cache's, whatever the shards."""
    prefix = f"{fresh_prefix()}cache:"
    cache = RedisBackend(redis_cluster, max_entries, prefix)
    try:
        for i in range(100):
            await cache.put(f"k{i}", b"answer", 60.0)
        kept = [i for i in range(100) if await cache.get(f"k{i}") is not None]
        assert 0 < len(kept) <= max_entries
    finally:
        client = cache._client()
        for key in [k async for k in client.scan_iter(match=prefix + "*")]:
            await client.delete(key)
        await cache.aclose()
