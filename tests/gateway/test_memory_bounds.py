"""The in-memory state stays bounded however many model names callers try: a key allowed
``provider/*`` names a new target (a breaker, a latency average, limit windows) with every
one, and idle ones are let go once ``MAX_TRACKED`` are held, without losing what still counts."""

from __future__ import annotations

import gc

import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf._context import CallContext
from cloverleaf.gateway.breaker import BreakerPolicy
from cloverleaf.gateway.state import memory
from cloverleaf.gateway.state.base import AttemptAsk, Bucket
from cloverleaf.gateway.state.memory import MemoryState

from .conftest import Harness, chat_request, upstream

POLICY = BreakerPolicy(failure_threshold=1, cooldown_seconds=3600.0)


async def test_idle_targets_are_let_go_and_live_ones_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "MAX_TRACKED", 50)
    state = MemoryState()
    now = 1000.0
    # a target whose breaker is open (for the hour of its cooldown) must survive (its window, once over, may go)
    await state.breaker_record("mylab/broken", False, now, POLICY, "boom")
    assert (await state.take([Bucket("target:mylab/limited:rpm", 1.0, 1.0)], now, 0.0)).granted
    for i in range(500):   # 500 model names, each a new target with its own window
        ask = AttemptAsk(f"mylab/m{i}", POLICY, [Bucket(f"target:mylab/m{i}:rpm", 100.0, 1.0)], 0.0)
        adm = await state.admit([], [], now + i * 2.0, 0.0, 61.0, ask)   # a name every 2 s: ~30 windows open
        assert adm.granted
        await state.record_latency(f"mylab/m{i}", 20.0)
    assert len(state._breakers) <= 60 and len(state._latency) <= 50
    assert len(state._logs) <= 60
    assert (await state.breaker_snapshots())["mylab/broken"].state == "open"
    assert (await state.take([Bucket("target:mylab/limited:rpm", 1.0, 1.0)], now + 1000.0, 0.0)).granted


async def test_a_window_with_requests_in_it_is_never_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "MAX_TRACKED", 10)
    state = MemoryState()
    now = 50.0
    assert (await state.take([Bucket("route:r:rpm", 2.0, 1.0)], now, 0.0)).granted
    for i in range(40):   # crowd the table while the route's window is still open
        await state.take([Bucket(f"target:x/{i}:rpm", 5.0, 1.0)], now + 0.5, 0.0)
    assert (await state.take([Bucket("route:r:rpm", 2.0, 1.0)], now + 1.0, 0.0)).granted
    assert not (await state.take([Bucket("route:r:rpm", 2.0, 1.0)], now + 2.0, 0.0)).granted   # still counted


async def test_a_table_of_live_windows_is_not_walked_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the windows held are all still counting, letting go frees nothing: the next look
    waits until the table has doubled, so admission does not walk it call after call."""
    monkeypatch.setattr(memory, "MAX_TRACKED", 20)
    state = MemoryState()
    walks = 0
    forget = state._forget_idle

    def counted(now: float, window: float) -> None:
        nonlocal walks
        walks += 1
        forget(now, window)

    monkeypatch.setattr(state, "_forget_idle", counted)
    for i in range(100):   # 100 windows, all live (within one window of each other)
        assert (await state.take([Bucket(f"target:x/{i}:rpm", 5.0, 1.0)], 10.0 + i * 0.01, 0.0)).granted
    assert len(state._logs) == 100 and walks <= 3     # at 20, 40 and 80: not once per call past 20


async def test_breakers_of_names_that_failed_once_are_let_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller allowed "provider/*" fails a new name at a time while its upstream is down:
    breakers that no longer change what a call gets — failing-but-closed a cooldown after their
    last failure, open past their cooldown — are let go, and the table stays at most
    ``MAX_TRACKED`` even while they all still matter (the oldest failing ones go first)."""
    monkeypatch.setattr(memory, "MAX_TRACKED", 100)
    state = MemoryState()
    policy = BreakerPolicy(failure_threshold=3, cooldown_seconds=60.0)
    now = 1000.0
    await state.breaker_record("mylab/down", False, now, POLICY, "boom")   # open for an hour
    for i in range(1000):   # 1,000 names, 10 a second, each failing once
        adm = await state.admit([], [], now, 0.0, 61.0, AttemptAsk(f"mylab/m{i}", policy, [], 0.0))
        assert adm.granted
        await state.breaker_record(f"mylab/m{i}", False, now, policy, "ServerError")
        now += 0.1
        assert len(state._breakers) <= 200
    assert len(state._stale) <= len(state._breakers)
    held = await state.breaker_snapshots()
    assert held["mylab/down"].state == "open"
    assert "mylab/m999" in held and held["mylab/m999"].consecutive_failures == 1   # failing now: kept
    now += 120.0    # two minutes on: the one-off failures are a cooldown old
    for i in range(300):
        await state.admit([], [], now, 0.0, 61.0, AttemptAsk(f"ok/m{i}", policy, [], 0.0))
        await state.breaker_record(f"ok/m{i}", True, now, policy)
    assert not [k for k in state._breakers if k.startswith("mylab/m")]
    assert (await state.breaker_snapshots())["mylab/down"].state == "open"


async def test_a_breaker_is_let_go_only_once_its_cooldown_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "MAX_TRACKED", 10)
    state = MemoryState()
    policy = BreakerPolicy(failure_threshold=1, cooldown_seconds=60.0)
    await state.breaker_record("mylab/opened", False, 0.0, policy, "boom")
    for i in range(30):   # crowd the table within the cooldown: the open breaker still refuses
        await state.breaker_record(f"x/{i}", True, 1.0, policy)
        await state.admit([], [], 1.0, 0.0, 61.0, AttemptAsk(f"x/{i}", policy, [], 0.0))
    assert not (await state.breaker_acquire("mylab/opened", 30.0, policy)).allowed
    for i in range(30):   # past it, a call would be the probe: the breaker may go
        await state.admit([], [], 61.0, 0.0, 61.0, AttemptAsk(f"y/{i}", policy, [], 0.0))
    assert (await state.breaker_acquire("mylab/opened", 61.0, policy)).allowed


async def test_each_model_name_tried_is_let_go_with_the_routers_cache(harness: Harness,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A key allowed "fake/*" (or "mylab/*") brings a new route with every model name it tries.
    What the gateway works out per name — its budget scopes, its rate-limit plans — is kept
    no longer than the router keeps the name's resolution (``MAX_CACHED``): the resolved
    targets (a Target, its config, price and adapter each) are not held past it."""
    from cloverleaf.gateway import budget, estimate, ratelimit, router
    from cloverleaf.gateway.router import ResolvedTarget

    for module, name in ((router, "MAX_CACHED"), (budget, "MAX_CACHED"), (ratelimit, "MAX_PLANS"),
                         (estimate, "MAX_CACHED_TARGETS")):
        monkeypatch.setattr(module, name, 20, raising=False)   # (budget had none of its own)
    gw = harness.gateway(budgets={"team": {"limit_usd": 100.0, "scope": "project"}},
                         limits={"fake": {"rpm": 1_000_000, "tpm": 1_000_000_000}})
    ctx = CallContext(project="team")
    for i in range(300):
        upstream(gw).script.reply(text="a")
        await gw.achat(f"fake/m{i}", chat_request(max_tokens=10), ctx)
    gc.collect()
    held = sum(1 for o in gc.get_objects() if type(o) is ResolvedTarget)   # (isinstance wakes lazy modules)
    assert held <= 2 * 20, f"{held} resolved targets held after 300 model names"
    assert len(gw.budgets._scope_sets) <= 20 and len(gw.budgets._counter_sets) <= 2
    assert len(gw.limiter._call_plans) <= 20 and len(gw.limiter._target_plans) <= 20


def test_a_configured_provider_row_is_built_once_for_all_its_model_names(harness: Harness) -> None:
    """``[providers.mylab]``: every model name on it shares the row's one adapter, as the
    built-in providers' do, rather than building its own for as long as its target lives."""
    gw = harness.gateway(providers={"mylab": ProviderSettings("mylab", kind="openai",
                                                              base_url="http://127.0.0.1:9/v1")})
    targets = [gw.engine.resolve(f"mylab/m{i}") for i in range(50)]
    assert len({id(t.adapter) for t in targets}) == 1
    assert len({id(t.spec) for t in targets}) == 1
    assert {t.model for t in targets} == {f"m{i}" for i in range(50)}


async def test_redis_state_keeps_window_key_names_no_longer_than_the_router_keeps_names() -> None:
    """Each model name tried brings its target's rate-limit windows; their Redis key names,
    built once per bucket, are kept for at most ``MAX_KEY_NAMES`` buckets, not 100,000."""
    from .redis_support import redis_state

    async with redis_state() as state:
        for i in range(10_000):
            state._window_key(f"target:mylab/m{i}:rpm")
        assert len(state._window_keys) <= 4096
        assert state._window_key("target:mylab/m9999:rpm")[0].endswith("w:target:mylab/m9999:rpm")
