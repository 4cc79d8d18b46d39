"""Several gateways — and several OS processes — on one Redis share one set of limits.

Each test has its own key prefix, so the gateways inside a test share state with each
other and with nobody else; every key is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import CircuitOpen, ConfigError, RateLimitExceeded, ServerError
from cloverleaf.gateway import Gateway, ManualClock
from cloverleaf.gateway.breaker import BreakerPolicy
from cloverleaf.gateway.state import Bucket, open_state
from cloverleaf.gateway.state.redis import RedisState, StateUnavailable

from .conftest import Harness, chat_request, upstream
from .redis_support import fresh_prefix, keys_under, redis_state, redis_url, wait_for

REPO = Path(__file__).resolve().parents[2]


def gateway_on(harness: Harness, state: Any, clock: ManualClock, name: str, **options: Any) -> Gateway:
    """A gateway with its own engine, fake upstream and store, on the given shared state."""
    settings = harness.settings(store={"url": f"sqlite:///{harness.tmp_path / (name + '.db')}"}, **options)
    engine = Engine(settings)
    gw = Gateway(settings, engine, clock=clock, state=state)
    harness.made.append((gw, engine))
    return gw


def stamp_upstream_calls(gw: Gateway, clock: ManualClock, times: list[float]) -> None:
    up = upstream(gw)
    original = up.plan

    def plan(*args: Any, **kwargs: Any) -> Any:
        times.append(clock.now())
        return original(*args, **kwargs)

    up.plan = plan


def max_in_any_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- two gateways in one process, each with its own Redis client ----------------------
@pytest.mark.redis
async def test_two_states_share_one_bucket_under_200_concurrent_takes() -> None:
    prefix = fresh_prefix()
    async with redis_state(prefix) as a, redis_state(prefix) as b:
        bucket = Bucket("target:fake/echo:rpm", 60.0, 1.0)
        grants = await asyncio.gather(*((a if i % 2 else b).take([bucket], 0.0, 0.0) for i in range(200)))
        assert sum(g.granted for g in grants) == 60
        assert await a.usage(bucket.key, 0.0) == await b.usage(bucket.key, 0.0) == 60.0


@pytest.mark.redis
@pytest.mark.parametrize("max_wait", [0.0, 300.0])
async def test_two_gateways_never_exceed_60_rpm_together(harness: Harness, max_wait: float) -> None:
    prefix, clock, times = fresh_prefix(), ManualClock(), list[float]()
    limits = {"fake": {"rpm": 60, "tpm": 0, "max_wait": max_wait}}
    async with redis_state(prefix) as state_a, redis_state(prefix) as state_b:
        gateways = [gateway_on(harness, state, clock, name, limits=limits)
                    for state, name in ((state_a, "a"), (state_b, "b"))]
        for gw in gateways:
            stamp_upstream_calls(gw, clock, times)

        async def one(i: int) -> str:
            try:
                return (await gateways[i % 2].achat("fake/echo", chat_request(f"call {i}"))).text
            except RateLimitExceeded:
                return "limited"

        tasks = [asyncio.ensure_future(one(i)) for i in range(200)]
        await clock.drive(*tasks)  # type: ignore[arg-type]
        ok = [t.result() for t in tasks if t.result() != "limited"]
    assert len(times) == len(ok)
    assert max_in_any_window(times) == 60  # two gateways, one limit: never 120
    if max_wait == 0.0:
        assert len(ok) == 60
    else:
        assert sorted(ok) == sorted(f"call {i}" for i in range(200))  # everyone waited their turn
    assert {len(upstream(gw).requests) > 0 for gw in gateways} == {True}


@pytest.mark.redis
async def test_a_breaker_opened_by_one_gateway_is_open_for_the_other(harness: Harness) -> None:
    prefix, clock = fresh_prefix(), ManualClock()
    async with redis_state(prefix) as state_a, redis_state(prefix) as state_b:
        first = gateway_on(harness, state_a, clock, "a")
        second = gateway_on(harness, state_b, clock, "b")
        upstream(first).script.fail(500, times=5)
        for _ in range(5):
            with pytest.raises(ServerError):
                await first.achat("fake/echo", chat_request())
        with pytest.raises(CircuitOpen) as info:
            await second.achat("fake/echo", chat_request())
        assert info.value.retry_after == pytest.approx(60.0)
        assert upstream(second).requests == []  # rejected with no network call
        snapshot = (await state_b.breaker_snapshots())["fake/echo"]
        assert snapshot.state == "open" and snapshot.consecutive_failures == 5
        assert snapshot.last_error == "ServerError"
        # after the cooldown, exactly one of the two gets the probe; its success closes it for both
        clock.advance(60)
        assert (await second.achat("fake/echo", chat_request("probe"))).text == "probe"
        assert (await state_a.breaker_snapshots())["fake/echo"].state == "closed"
        assert (await first.achat("fake/echo", chat_request("again"))).text == "again"


@pytest.mark.redis
async def test_latency_averages_measured_by_one_gateway_route_the_other(harness: Harness) -> None:
    prefix, clock = fresh_prefix(), ManualClock()
    routes = {"quick": {"targets": ["fake/slow", "fake/fast"], "strategy": "latency"}}
    async with redis_state(prefix) as state_a, redis_state(prefix) as state_b:
        measuring = gateway_on(harness, state_a, clock, "a")
        routing = gateway_on(harness, state_b, clock, "b", routes=routes)
        up = upstream(measuring)
        original = up.plan

        def plan(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
            clock.advance(0.5 if json.loads(body)["model"] == "slow" else 0.02)  # the upstream "takes" this long
            return original(method, path, headers, body)

        up.plan = plan
        for model in ("fake/slow", "fake/fast", "fake/slow"):
            await measuring.achat(model, chat_request())
        averages = await state_b.latencies(["fake/slow", "fake/fast"])
        assert averages == pytest.approx({"fake/slow": 500.0, "fake/fast": 20.0})
        resp = await routing.achat("quick", chat_request("which"))
        assert resp.metadata.target == "fake/fast"
        assert [json.loads(r.body)["model"] for r in upstream(routing).requests] == ["fast"]


@pytest.mark.redis
def test_the_sync_gateway_uses_redis_from_its_own_loop(harness: Harness) -> None:
    """The sync API runs the gateway on a private loop thread: a second event loop."""
    prefix = fresh_prefix()
    state = RedisState(redis_url(), prefix=prefix)
    clock = ManualClock()
    gw = gateway_on(harness, state, clock, "sync", limits={"fake": {"rpm": 2, "tpm": 0, "max_wait": 0}})
    try:
        assert [gw.chat("fake/echo", chat_request(f"n{i}")).text for i in range(2)] == ["n0", "n1"]
        with pytest.raises(RateLimitExceeded):
            gw.chat("fake/echo", chat_request("n2"))
        assert gw.breakers["fake/echo"].state == "closed"

        async def from_here() -> float:
            try:
                # shared state is kept in epoch time, so replicas on other hosts agree
                return await state.usage("provider:fake:rpm", clock.wall())
            finally:
                await state.aclose()  # this loop ends with asyncio.run: close its connections first

        assert asyncio.run(from_here()) == 2.0  # and from yet another loop
        assert gw.breakers["fake/echo"].consecutive_failures == 0  # the private loop reconnects
    finally:
        async def cleanup() -> None:
            await state.clear()
            await state.aclose()  # closes the private loop's client on that loop

        asyncio.run(cleanup())


# -- two OS processes -------------------------------------------------------------------
def worker(url: str, prefix: str, calls: int, db: str) -> None:
    """One process: a gateway on the shared Redis fires ``calls`` concurrent calls under a
    60 rpm limit at a frozen clock, after every worker is ready; prints its counts."""
    import redis.asyncio as aioredis

    async def run() -> dict[str, int]:
        settings = Settings(limits={"fake": {"rpm": 60, "tpm": 0, "max_wait": 0}}, store={"url": f"sqlite:///{db}"},
                            gateway=True, max_retries=0, env={}, timeout=5.0, connect_timeout=2.0)
        engine = Engine(settings)
        gw = Gateway(settings, engine, clock=ManualClock(start=1000.0), state=RedisState(url, prefix=prefix))
        signals = aioredis.Redis.from_url(url)
        try:
            await signals.rpush(prefix + "ready", "1")
            for _ in range(90):   # short blocking reads: the test Redis drops a read idle for 5 s
                if await signals.blpop([prefix + "go"], timeout=2):
                    break
            else:
                raise AssertionError("the test never said go")

            async def one(i: int) -> bool:
                try:
                    await gw.achat("fake/echo", chat_request(f"process call {i}"))
                    return True
                except RateLimitExceeded:
                    return False

            results = await asyncio.gather(*(one(i) for i in range(calls)))
            return {"ok": sum(results), "limited": len(results) - sum(results),
                    "upstream": len(upstream(gw).requests)}
        finally:
            await signals.aclose()
            await gw.aclose()
            engine.close()

    print(json.dumps(asyncio.run(run())))


@pytest.mark.redis
def test_two_processes_share_one_60_rpm_limit(tmp_path: Path) -> None:
    import redis

    url, prefix = redis_url(), fresh_prefix()
    code = "import sys; from tests.gateway.test_redis_shared import worker; worker(*sys.argv[1:3], 100, sys.argv[3])"
    procs = [subprocess.Popen([sys.executable, "-c", code, url, prefix, str(tmp_path / f"w{i}.db")], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    signals = redis.Redis.from_url(url, decode_responses=True)
    try:
        for _ in procs:
            assert wait_for(signals, prefix + "ready"), "a worker did not start"
        signals.rpush(prefix + "go", "1", "1")  # both start together
        outputs = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for key in signals.scan_iter(match=prefix + "*"):
            signals.delete(key)
        signals.close()
    assert sum(o["ok"] for o in outputs) == 60  # not 60 per process
    assert sum(o["limited"] for o in outputs) == 140
    assert [o["upstream"] for o in outputs] == [o["ok"] for o in outputs]


# -- configuration, keys and failures ---------------------------------------------------
@pytest.mark.redis
async def test_state_url_and_prefix_from_config(harness: Harness) -> None:
    prefix = fresh_prefix()
    settings = harness.settings()
    settings.state = {"url": f"{redis_url()}?prefix={prefix}"}
    engine = Engine(settings)
    gw = Gateway(settings, engine, clock=ManualClock())
    harness.made.append((gw, engine))
    assert isinstance(gw.state, RedisState) and gw.state.shared and gw.state.prefix == prefix
    await gw.achat("fake/echo", chat_request())
    assert f"{prefix}circuits" in await keys_under(prefix)
    await gw.state.clear()
    await gw.state.aclose()


@pytest.mark.redis
async def test_every_key_is_namespaced_and_expires() -> None:
    import redis.asyncio as aioredis

    prefix = fresh_prefix()
    async with redis_state(prefix) as state:
        assert isinstance(state, RedisState)
        await state.take([Bucket("provider:p:rpm", 5.0, 1.0)], 0.0, 0.0)
        await state.breaker_acquire("t", 0.0, BreakerPolicy())
        await state.record_latency("t", 12.0)
        keys = await keys_under(prefix)
        assert keys == sorted([f"{prefix}w:provider:p:rpm", f"{prefix}wm:provider:p:rpm", f"{prefix}circuits",
                               f"{prefix}latency"])
        client = aioredis.Redis.from_url(redis_url())
        try:
            ttls = {k: await client.pttl(k) for k in keys}
        finally:
            await client.aclose()
        assert 0 < ttls[f"{prefix}w:provider:p:rpm"] <= 120_000  # one window plus the slack
        assert 0 < ttls[f"{prefix}circuits"] <= 86_400_000 and 0 < ttls[f"{prefix}latency"] <= 86_400_000
        # admissions whose window has passed are pruned: the list never outgrows one window
        for i in range(20):
            await state.take([Bucket("provider:p:rpm", 5.0, 1.0)], 30.0 * i, 0.0)
        client = aioredis.Redis.from_url(redis_url())
        try:
            assert await client.llen(f"{prefix}w:provider:p:rpm") == 2
        finally:
            await client.aclose()
    assert await keys_under(prefix) == []


def test_open_state_chooses_by_scheme() -> None:
    assert not open_state("memory").shared
    redis_backend = open_state("redis://:s3cret@127.0.0.1:6379/2?prefix=app:")
    assert isinstance(redis_backend, RedisState) and redis_backend.prefix == "app:"
    assert "s3cret" not in repr(redis_backend)
    assert open_state("rediss://127.0.0.1:6380/0", prefix="x:").prefix == "x:"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="memcached"):
        open_state("memcached://127.0.0.1")


async def test_an_unreachable_redis_fails_clearly_without_the_password() -> None:
    state = RedisState("redis://:hunter2@127.0.0.1:1/0", socket_connect_timeout=2)
    with pytest.raises(StateUnavailable) as info:
        await state.take([Bucket("k:rpm", 1.0, 1.0)], 0.0, 0.0)
    message = str(info.value)
    assert "hunter2" not in message and "127.0.0.1:1" in message and "[state] url" in message
    await state.aclose()


def test_a_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"pip install 'cloverleaf\[redis\]'"):
        RedisState("redis://127.0.0.1:6379/0")


def test_shared_state_is_kept_in_epoch_time_and_closed_with_the_gateway(harness: Harness) -> None:
    """Replicas on different hosts share no monotonic clock: a shared backend gets epoch time."""
    prefix = fresh_prefix()
    state = RedisState(redis_url(), prefix=prefix)
    clock = ManualClock(start=5.0, epoch=1_800_000_000.0)
    gw = gateway_on(harness, state, clock, "sync", limits={"fake": {"rpm": 5, "tpm": 0, "max_wait": 0}})
    try:
        gw.chat("fake/echo", chat_request("one"))

        async def usage_at(t: float) -> float:
            try:
                return await state.usage("provider:fake:rpm", t)
            finally:
                await state.aclose()

        assert asyncio.run(usage_at(clock.wall())) == 1.0
        assert asyncio.run(usage_at(clock.now())) == 0.0  # nothing was booked at monotonic time
    finally:
        gw.close()  # closes the private loop's Redis client on that loop
        assert not state._clients

        async def cleanup() -> None:
            await state.clear()
            await state.aclose()

        asyncio.run(cleanup())
