"""Budgets: reserved before, settled after, never overspent under concurrency, persisted."""

from __future__ import annotations

import asyncio
import logging
import types
from typing import Any

import pytest

from cloverleaf._context import CallContext, KeyPolicy
from cloverleaf._errors import BudgetExceeded
from cloverleaf.gateway import ManualClock, SystemClock
from cloverleaf.gateway.state import StateBackend
from cloverleaf.gateway.store import VirtualKeyRow

from .conftest import Harness, chat_request, upstream


def ledger(gw: Any, scope: str, period: str = "total") -> tuple[float, float]:
    """The store's (spent, reserved) once the writer has caught up with every settled call."""
    gw.store.flush()
    return gw.store.budget_usage(scope, period)  # type: ignore[no-any-return]


async def live(gw: Any, scope: str, period: str = "total") -> tuple[float, float]:
    """The state backend's counter: (spent, reserved) right now."""
    return await gw.state.budget_usage(f"{scope}|{period}") or (0.0, 0.0)

# fake/echo bills $1/M input and $2/M output; this reply costs (1 + 2000) / 1e6 = $0.002001
CALL_COST = 0.002001
REPLY_USAGE = {"input_tokens": 1, "output_tokens": 1000}


async def test_concurrent_calls_never_overspend_a_budget(harness: Harness) -> None:
    gw = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["fake/echo"]}},
                         budgets={"r": {"limit_usd": 0.01}})
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE, times=40)

    async def one() -> str:
        try:
            return (await gw.achat("r", chat_request(max_tokens=1000))).text
        except BudgetExceeded:
            return "refused"

    results = await asyncio.gather(*(one() for _ in range(40)))
    # each reservation is the worst case (the prompt's 93-token bound + 1000 output tokens at $2/M)
    assert results.count("paid") == 4
    assert results.count("refused") == 36
    spent, reserved = await live(gw, "route:r")
    assert spent == pytest.approx(4 * CALL_COST)
    assert spent <= 0.01
    assert reserved == pytest.approx(0.0)
    assert ledger(gw, "route:r") == (pytest.approx(4 * CALL_COST), 0.0)
    assert len(upstream(gw).requests) == 4


async def test_budget_survives_a_restart(harness: Harness) -> None:
    settings = harness.settings(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 0.003}})
    first = harness.gateway(settings)
    upstream(first).script.reply(text="one", usage=REPLY_USAGE)
    await first.achat("r", chat_request(max_tokens=1000))
    first.close()
    second = harness.gateway(settings)
    [status] = await second.budgets.status()
    assert status.spent_usd == pytest.approx(CALL_COST) and status.limit_usd == 0.003
    with pytest.raises(BudgetExceeded) as info:
        await second.achat("r", chat_request(max_tokens=1000))
    assert info.value.scope == "route:r"
    assert upstream(second).requests == []


async def test_failed_call_releases_its_reservation(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/fail-500"]}}, budgets={"r": {"limit_usd": 1.0}})
    with pytest.raises(Exception):  # noqa: B017 - AllTargetsFailed, the point is the ledger
        await gw.achat("r", chat_request(max_tokens=1000))
    assert ledger(gw, "route:r") == (0.0, 0.0)
    assert await live(gw, "route:r") == (0.0, 0.0)


async def test_project_and_key_budgets(harness: Harness) -> None:
    gw = harness.gateway(budgets={"acme": {"limit_usd": 1.0, "scope": "project"}})
    gw.store.create_virtual_key(VirtualKeyRow(id="k_1", secret_hash="h1", name="team"))
    ctx = CallContext(project="acme", key=KeyPolicy("k_1", budget=0.003))
    upstream(gw).script.reply(text="a", usage=REPLY_USAGE)
    await gw.achat("fake/echo", chat_request(max_tokens=1000), ctx)
    with pytest.raises(BudgetExceeded) as info:
        await gw.achat("fake/echo", chat_request(max_tokens=1000), ctx)
    assert info.value.scope == "key:k_1"
    assert ledger(gw, "project:acme")[0] == pytest.approx(CALL_COST)
    assert gw.store.get_virtual_key("k_1").spent == pytest.approx(CALL_COST)


async def test_daily_budget_resets_with_the_calendar(harness: Harness) -> None:
    clock = ManualClock(autojump=True, epoch=1_700_000_000.0)  # 2023-11-14 22:13 UTC
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}},
                         budgets={"r": {"limit_usd": 0.003, "period": "day"}})
    upstream(gw).script.reply(text="a", usage=REPLY_USAGE, times=2)
    await gw.achat("r", chat_request(max_tokens=1000))
    with pytest.raises(BudgetExceeded):
        await gw.achat("r", chat_request(max_tokens=1000))
    clock.advance(3 * 3600)  # past midnight UTC
    assert (await gw.achat("r", chat_request(max_tokens=1000))).text == "a"
    assert ledger(gw, "route:r", "2023-11-14")[0] == pytest.approx(CALL_COST)
    assert ledger(gw, "route:r", "2023-11-15")[0] == pytest.approx(CALL_COST)


async def test_monthly_budget_resets_when_the_month_turns(harness: Harness) -> None:
    """A call's budget counters are worked out once per UTC day and looked up per call: the
    first call after midnight on the 1st must count against the new month's counter."""
    clock = ManualClock(autojump=True, epoch=1_701_385_200.0)  # 2023-11-30 23:00 UTC
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}},
                         budgets={"r": {"limit_usd": 0.003, "period": "month"}})
    upstream(gw).script.reply(text="a", usage=REPLY_USAGE, times=2)
    await gw.achat("r", chat_request(max_tokens=1000))
    with pytest.raises(BudgetExceeded):
        await gw.achat("r", chat_request(max_tokens=1000))
    clock.advance(2 * 3600)  # 2023-12-01 01:00 UTC
    assert (await gw.achat("r", chat_request(max_tokens=1000))).text == "a"
    assert ledger(gw, "route:r", "2023-11")[0] == pytest.approx(CALL_COST)
    assert ledger(gw, "route:r", "2023-12")[0] == pytest.approx(CALL_COST)


async def test_a_keys_changed_budget_applies_from_its_next_call(harness: Harness) -> None:
    """A call's budget scopes are looked up per (route, project, key budget): a key given a
    larger budget, none, or another period must not keep the scope it had."""
    clock = ManualClock(autojump=True, epoch=1_700_000_000.0)   # 2023-11-14 UTC
    gw = harness.gateway(clock=clock)
    upstream(gw).script.reply(text="a", usage=REPLY_USAGE, times=4)
    tight = CallContext(key=KeyPolicy("k_1", budget=0.003))
    await gw.achat("fake/echo", chat_request(max_tokens=1000), tight)
    with pytest.raises(BudgetExceeded) as info:
        await gw.achat("fake/echo", chat_request(max_tokens=1000), tight)
    assert info.value.scope == "key:k_1"
    await gw.achat("fake/echo", chat_request(max_tokens=1000), CallContext(key=KeyPolicy("k_1", budget=1.0)))
    await gw.achat("fake/echo", chat_request(max_tokens=1000), CallContext(key=KeyPolicy("k_1")))   # no budget
    daily = CallContext(key=KeyPolicy("k_1", budget=1.0, budget_period="day"))
    await gw.achat("fake/echo", chat_request(max_tokens=1000), daily)
    assert ledger(gw, "key:k_1")[0] == pytest.approx(2 * CALL_COST)   # the calls under a lifetime budget
    assert ledger(gw, "key:k_1", "2023-11-14")[0] >= CALL_COST        # the daily one's counter


async def test_bookkeeping_left_for_after_the_response_settles_when_awaited(harness: Harness) -> None:
    """With ``CallContext.after_response``, the answer comes back priced (cost, target,
    attempts) with its reservation still held; awaiting what the gateway left there settles
    the budget and writes the record, exactly as an ordinary call does before returning."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}})
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE)
    jobs: list = []
    resp = await gw.achat("r", chat_request(max_tokens=1000), CallContext(after_response=jobs))
    assert resp.text == "paid" and resp.cost == pytest.approx(CALL_COST)
    assert resp.metadata.target == "fake/echo" and [a.target for a in resp.metadata.attempts] == ["fake/echo"]
    assert len(jobs) == 1
    spent, reserved = await live(gw, "route:r")
    assert spent == 0.0 and reserved > 0.0          # held until the bookkeeping runs
    await jobs[0]
    spent, reserved = await live(gw, "route:r")
    assert spent == pytest.approx(CALL_COST) and reserved == pytest.approx(0.0)
    assert ledger(gw, "route:r")[0] == pytest.approx(CALL_COST)
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert call.status == "ok" and call.cost == pytest.approx(CALL_COST)


@pytest.mark.parametrize("mode", ["state", "store"])
async def test_budget_usage_shows_what_calls_in_flight_reserve(harness: Harness, mode: str) -> None:
    """What the Spend page shows: in the default mode reservations live in the state backend's
    counters, and the status read the store's ledger, which never hears of them ("$0 reserved"
    while calls were refused for lack of room). Both modes report the reservation, per route and
    per key, and a refusal names the other calls' reservations apart from this call's."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}},
                         state={"budgets": mode})
    key = KeyPolicy("k_1", budget=0.004)
    key_scope = next(s for s in gw.budgets.scopes(gw.router.route("r"), CallContext(key=key)) if s.key == "key:k_1")
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE)
    jobs: list = []
    await gw.achat("r", chat_request(max_tokens=1000), CallContext(key=key, after_response=jobs))
    route, held = await gw.budgets.usage([*gw.budgets.configured(), key_scope])
    assert route.reserved_usd > 0.002 and held.reserved_usd == pytest.approx(route.reserved_usd)
    assert held.spent_usd == 0.0 and [s.key for s in await gw.budgets.status()] == ["route:r"]
    with pytest.raises(BudgetExceeded) as info:
        await gw.achat("r", chat_request(max_tokens=1000), CallContext(key=key))
    assert (info.value.reserved, info.value.requested) == (pytest.approx(held.reserved_usd),) * 2
    assert "reserved by calls in flight" in str(info.value) and "reserved for this call" not in str(info.value)
    await jobs[0]
    route, held = await gw.budgets.usage([*gw.budgets.configured(), key_scope])
    assert (route.spent_usd, route.reserved_usd) == (pytest.approx(CALL_COST), pytest.approx(0.0))
    assert (held.spent_usd, held.reserved_usd) == (pytest.approx(CALL_COST), pytest.approx(0.0))


async def test_without_after_response_the_call_is_settled_when_it_returns(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}})
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE)
    await gw.achat("r", chat_request(max_tokens=1000), CallContext())
    spent, reserved = await live(gw, "route:r")
    assert spent == pytest.approx(CALL_COST) and reserved == pytest.approx(0.0)


def _settling_harness(harness: Harness) -> Any:
    """Call-level (route) and attempt-level (provider) rate limits, and a budget: three things to
    settle. The state runs the base class's step-by-step ``finish`` (what a backend without its
    own gets; MemoryState does the four steps under one lock), so a step can be made to fail."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}},
                         limits={"route:r": {"rpm": 100, "tpm": 1_000_000, "max_wait": 0},
                                 "fake": {"rpm": 100, "tpm": 1_000_000, "max_wait": 0}})
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE)
    gw.state.finish = types.MethodType(StateBackend.finish, gw.state)
    return gw


async def _nothing_held(gw: Any) -> bool:
    return (await live(gw, "route:r"))[1] == 0.0 and not gw.state._tickets


@pytest.mark.parametrize("deferred", [False, True], ids=["returned", "after-response"])
async def test_a_state_backend_failing_while_settling_a_success_still_settles_the_call(
        harness: Harness, deferred: bool, caplog: pytest.LogCaptureFixture) -> None:
    """The attempt's settlement (breaker, latency) raising must not strand the call's own rate
    limit ticket and budget reservation: the call has finished, nothing else will settle them.
    Nor does it fail the call: the answer is complete, the failure is logged once."""
    gw = _settling_harness(harness)
    assert gw.state._tickets == {}

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("state backend went away")

    gw.state.breaker_record = broken  # type: ignore[method-assign]
    jobs: list = []
    ctx = CallContext(after_response=jobs if deferred else None)
    with caplog.at_level(logging.WARNING, logger="cloverleaf.gateway"):
        assert (await gw.achat("r", chat_request(max_tokens=1000), ctx)).text == "paid"
        for job in jobs:
            await job
    assert [r.message for r in caplog.records if "settle" in r.message] == [
        "could not settle an answered call's limits and budgets (the answer stands): RuntimeError"]
    assert await _nothing_held(gw)
    assert ledger(gw, "route:r")[0] == pytest.approx(CALL_COST)
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert call.status == "ok" and call.cost == pytest.approx(CALL_COST)


async def test_cancelled_while_settling_the_attempt_still_settles_the_call(harness: Harness) -> None:
    gw = _settling_harness(harness)
    entered = asyncio.Event()

    async def slow(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    gw.state.record_latency = slow  # type: ignore[method-assign]
    jobs: list = []
    await gw.achat("r", chat_request(max_tokens=1000), CallContext(after_response=jobs))
    task = asyncio.ensure_future(jobs[0])
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(20):
        await asyncio.sleep(0)
    assert await _nothing_held(gw)
    gw.store.flush()
    assert gw.store.recent_calls(1)[0].status == "ok"


def test_a_budget_refuses_a_target_it_cannot_price() -> None:
    """A model with no price (a remote model missing from the table, an image model) reserved and
    was charged $0: a $2.50 budget let $5 of calls through. A budget fails closed instead, before
    anything is sent, and says how to give the model a price; priced and local targets still run."""
    import cloverleaf
    from cloverleaf._config import Settings

    routes = {"mixed": {"targets": ["openai/gpt-5.1-unpriced", "fake/echo"]}, "local": {"targets": ["fake/echo"]}}
    settings = Settings(env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
                        gateway=True, routes=routes, budgets={"mixed": {"limit_usd": 2.5}, "local": {"limit_usd": 1.0}},
                        store={"url": "sqlite://"})
    with cloverleaf.Client(settings) as client:
        with pytest.raises(BudgetExceeded) as refused:
            client.chat("mixed", "hello")
        assert refused.value.unpriced == ("openai/gpt-5.1-unpriced",)
        assert "has no price" in str(refused.value) and "input_cost_per_1k" in str(refused.value)
        assert client.chat("local", "hello").content == "hello"        # local: priced at 0.0
    from cloverleaf.server.errors import to_api_error

    answer = to_api_error(refused.value)
    assert (answer.status, answer.code) == (402, "budget_unpriced")
