"""A budget on a model id caps that model whatever name a call reaches it by.

``[budgets."fake/echo"]`` was looked up by the name the client sent, so ``fake:echo``, a
registry entry for fake/echo and a route with it among its targets all went round it. Each
now reserves against it (a route whose targets include it, whichever target answers: never
overspent), and its ledger row starts from the calls made under every one of those names.

fake/echo bills $1/M input and $2/M output here: the reply costs $0.002001, and a call with
max_tokens=1000 reserves $0.002186 first. A $0.005 budget has room for two calls.
"""

from __future__ import annotations

import pytest

from cloverleaf._config import ModelEntry, Settings
from cloverleaf._context import CallContext
from cloverleaf._engine import Engine
from cloverleaf._errors import BudgetExceeded
from cloverleaf.gateway import Gateway, ManualClock
from cloverleaf.gateway.model_budgets import reader_canonical, spend_by_model
from cloverleaf.gateway.store import SpendRow

from .conftest import Harness, chat_request, upstream

CALL_COST = 0.002001
REPLY_USAGE = {"input_tokens": 1, "output_tokens": 1000}
ENTRY = ModelEntry(name="echo-entry", provider="fake", identifier="echo")
ROUTES = {"r": {"targets": ["fake/echo"]}, "fallback": {"targets": ["fake/echo", "fake/other"]},
          "elsewhere": {"targets": ["fake/other"]}}
NAMES = ["fake/echo", "fake:echo", "echo-entry", "r", "fallback"]


def gateway(harness: Harness, mode: str, clock: ManualClock, limit: float = 0.005) -> Gateway:
    return harness.gateway(harness.settings(routes=ROUTES, models=[ENTRY], state={"budgets": mode},
                                            budgets={"fake/echo": {"limit_usd": limit, "period": "day"}}),
                           clock=clock)


async def admitted(gw: Gateway, model: str) -> bool:
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE)
    try:
        await gw.achat(model, chat_request(max_tokens=1000), CallContext())
    except BudgetExceeded as exc:
        assert exc.scope == "model:fake/echo"   # what it is (its counter keeps the key "route:fake/echo")
        return False
    return True


@pytest.mark.parametrize("mode", ["state", "store"])
@pytest.mark.parametrize("first", NAMES)
async def test_every_name_of_the_model_reserves_against_its_budget(harness: Harness, mode: str, first: str) -> None:
    gw = gateway(harness, mode, ManualClock(autojump=True))
    second = NAMES[(NAMES.index(first) + 1) % len(NAMES)]
    assert [await admitted(gw, first), await admitted(gw, second)] == [True, True]
    assert [await admitted(gw, name) for name in NAMES] == [False] * len(NAMES)
    assert await admitted(gw, "elsewhere")           # another model: not this budget's
    [status] = await gw.budgets.status()
    assert status.key == "route:fake/echo" and status.spent_usd == pytest.approx(2 * CALL_COST)


@pytest.mark.parametrize("mode", ["state", "store"])
async def test_a_model_budget_added_counts_the_calls_made_under_its_other_names(harness: Harness,
                                                                                mode: str) -> None:
    """Its ledger row starts from the call records of every name that reaches the model."""
    clock = ManualClock(autojump=True)
    before = harness.gateway(harness.settings(routes=ROUTES, models=[ENTRY], state={"budgets": mode}), clock=clock)
    for name in ("fake:echo", "r"):
        assert await admitted(before, name)
    before.close()
    after = gateway(harness, mode, clock)
    assert not await admitted(after, "echo-entry")     # $0.004002 spent: $0.002186 more does not fit
    [status] = await after.budgets.status()
    assert status.spent_usd == pytest.approx(2 * CALL_COST)


def test_spend_by_model_is_one_row_per_model() -> None:
    rows = [SpendRow("fake/echo", 2, 10, 20, 0.5), SpendRow("echo-entry", 1, 5, 10, 0.25, 1),
            SpendRow("fake:echo", 1, 5, 10, 0.25), SpendRow("fake/other", 1, 1, 1, 0.1), SpendRow("-", 3, 0, 0, 0.0)]
    canonical = {"fake/echo": "fake/echo", "echo-entry": "fake/echo", "fake:echo": "fake/echo",
                 "fake/other": "fake/other"}.get
    assert spend_by_model(rows, canonical) == [SpendRow("fake/echo", 4, 20, 40, 1.0, 1),
                                               SpendRow("fake/other", 1, 1, 1, 0.1), SpendRow("-", 3, 0, 0, 0.0)]


def test_reading_the_call_logs_names_leaves_the_request_paths_targets_cached() -> None:
    """Spend and traces by model resolve every target the call log names. Through the engine's
    cache, a store with thousands of them filled it past its bound, which empties it: the request
    path then resolved its own targets again. A reader resolves aside from it, once per name."""
    engine = Engine(Settings.load(env={}, models=[ENTRY]))
    try:
        hot = engine.resolve("fake/echo")
        cached = dict(engine._targets)
        canonical = reader_canonical(engine)
        names = [f"fake/model-{i}" for i in range(5000)]
        assert [canonical(n) for n in names] == names
        assert canonical("fake:echo") == "fake/echo" and canonical("echo-entry") == "fake/echo"
        assert canonical("nowhere/x") is None
        assert engine._targets == cached and engine.resolve("fake/echo") is hot
    finally:
        engine.close()


# -- a model budget on a fallback route is charged only for what its model answered ----------

BOTH = {"fake/echo": {"limit_usd": 1.0, "period": "day"}, "fake/other": {"limit_usd": 1.0, "period": "day"}}
#: the state modes a model budget is counted in: the memory backend, Redis, the store's ledger
MODES = ["memory", pytest.param("redis", marks=pytest.mark.redis), "store"]


def counted_in(harness: Harness, mode: str, prefix: str, clock: ManualClock) -> Gateway:
    if mode == "redis":
        from .redis_support import redis_url

        state: dict[str, object] = {"url": f"{redis_url()}?prefix={prefix}"}
    else:
        state = {"budgets": "store" if mode == "store" else "state"}
    return harness.gateway(harness.settings(routes=ROUTES, models=[ENTRY], state=state, budgets=BOTH), clock=clock)


async def spent(gw: Gateway) -> dict[str, tuple[float, float]]:
    """Each model budget's (spent, reserved) as /admin/budgets reads it."""
    return {s.key: (round(s.spent_usd, 9), round(s.reserved_usd, 9)) for s in await gw.budgets.status()}


@pytest.mark.parametrize("mode", MODES)
async def test_a_fallback_route_charges_each_model_budget_only_what_its_model_answered(
        harness: Harness, mode: str) -> None:
    """``fallback`` is fake/echo then fake/other: both model budgets apply to its calls (either
    may answer: each reserves), but each is charged only the call that its own model answered,
    and 0 when the other one did — the target that failed over, or the fallback never tried.
    A restart reads the same spend, counted again from the ledger or from the call records."""
    from .redis_support import fresh_prefix

    prefix, clock = fresh_prefix(), ManualClock(autojump=True)
    gw = counted_in(harness, mode, prefix, clock)
    try:
        assert await admitted(gw, "fallback")                  # fake/echo answers: fake/other never tried
        assert await spent(gw) == {"route:fake/echo": (CALL_COST, 0.0), "route:fake/other": (0.0, 0.0)}
        upstream(gw).script.fail(500)                          # fake/echo fails over to fake/other
        assert await admitted(gw, "fallback")
        assert await spent(gw) == {"route:fake/echo": (CALL_COST, 0.0), "route:fake/other": (CALL_COST, 0.0)}
        assert await admitted(gw, "elsewhere")                 # only fake/other
        expected = {"route:fake/echo": (CALL_COST, 0.0), "route:fake/other": (2 * CALL_COST, 0.0)}
        assert await spent(gw) == expected
        gw.close()
        again = counted_in(harness, mode, prefix, clock)      # a restart: counters from the ledger
        assert await spent(again) == expected
        assert await admitted(again, "r")                      # the first call after it opens the counters
        expected["route:fake/echo"] = (2 * CALL_COST, 0.0)
        assert await spent(again) == expected
    finally:
        if mode == "redis":
            from .redis_support import redis_state

            async with redis_state(prefix):
                pass


@pytest.mark.parametrize("mode", MODES)
async def test_model_budgets_added_later_count_only_what_their_model_answered_in_the_call_records(
        harness: Harness, mode: str) -> None:
    """Budgets added to the config start from the call records: of a fallback route's calls,
    each model's own answers (the records' target), not every call requested by a name that
    could reach it."""
    from .redis_support import fresh_prefix, redis_state

    prefix, clock = fresh_prefix(), ManualClock(autojump=True)
    before = harness.gateway(harness.settings(routes=ROUTES, models=[ENTRY]), clock=clock)
    assert await admitted(before, "fallback")                  # fake/echo answers
    upstream(before).script.fail(500)
    assert await admitted(before, "fallback")                  # fake/other answers
    before.close()
    try:
        after = counted_in(harness, mode, prefix, clock)
        assert await spent(after) == {"route:fake/echo": (CALL_COST, 0.0), "route:fake/other": (CALL_COST, 0.0)}
        assert await admitted(after, "echo-entry")
        assert await spent(after) == {"route:fake/echo": (2 * CALL_COST, 0.0), "route:fake/other": (CALL_COST, 0.0)}
    finally:
        if mode == "redis":
            async with redis_state(prefix):
                pass


@pytest.mark.parametrize("mode", MODES)
async def test_a_stream_cut_after_a_failover_charges_the_model_that_streamed(harness: Harness, mode: str) -> None:
    """A call the provider may bill although it failed (a stream cut after its output) is charged
    its reservation — to the model of the attempt that streamed, not the one that failed over."""
    from cloverleaf._errors import StreamInterrupted

    from .redis_support import fresh_prefix, redis_state

    prefix = fresh_prefix()
    gw = counted_in(harness, mode, prefix, ManualClock(autojump=True))
    try:
        upstream(gw).script.fail(500)
        upstream(gw).script.reset_after(2)
        with pytest.raises(StreamInterrupted):
            async for _ in gw.astream("fallback", chat_request("one two three four five six", max_tokens=1000)):
                pass
        budgets = await spent(gw)
        assert budgets["route:fake/echo"] == (0.0, 0.0)
        charged, reserved = budgets["route:fake/other"]
        assert charged > 0.0 and reserved == 0.0
        gw.store.flush()
        [record] = gw.store.recent_calls()
        assert record.target == "fake/other" and record.charged == pytest.approx(charged)
    finally:
        if mode == "redis":
            async with redis_state(prefix):
                pass
