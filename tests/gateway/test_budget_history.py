"""A budget that starts to apply to a scope that has spent already counts that spend.

Only calls that hold a reservation reach the budget ledger, so a route or project budget added to
cloverleaf.toml mid-period, or a key's budget set again, started at $0 and let the scope spend
its period's limit a second time. Its ledger row is now made from (or raised to) the call
records: what ``cloverleaf spend`` shows the scope spent in the period. The server's admin API
side (a key given a budget) is in ``tests/server/test_key_budget_history.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cloverleaf._context import CallContext, KeyPolicy
from cloverleaf._errors import BudgetExceeded
from cloverleaf.gateway import Gateway, ManualClock
from cloverleaf.gateway.budget import BudgetScope
from cloverleaf.gateway.store import CallRecord, Store, open_store

from .conftest import Harness, chat_request, upstream
from .stores import STORE_KINDS, fresh_postgres_database, store_url

# fake/echo bills $1/M input and $2/M output: this reply costs $0.002001, and a call with
# max_tokens=1000 reserves $0.002186 first (its prompt's 93-token bound plus 1000, at $2/M)
CALL_COST = 0.002001
REPLY_USAGE = {"input_tokens": 1, "output_tokens": 1000}
NOW = 1_700_000_000.0   # 2023-11-14 22:13:20 UTC


async def paid_calls(gw: Gateway, model: str, ctx: CallContext, at_most: int) -> int:
    """How many of ``at_most`` calls the budgets let through (they stop at the first refusal)."""
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE, times=at_most)
    for done in range(at_most):
        try:
            await gw.achat(model, chat_request(max_tokens=1000), ctx)
        except BudgetExceeded:
            return done
    return at_most


SCOPES = {"route": ("r", CallContext(), {"limit_usd": 0.0}),
          "project": ("fake/echo", CallContext(project="acme"), {"limit_usd": 0.0, "scope": "project"})}


@pytest.mark.parametrize("mode", ["state", "store"])
@pytest.mark.parametrize("scope", sorted(SCOPES))
@pytest.mark.parametrize(("period", "limit", "counted"), [("day", 0.005, 1), ("total", 0.0082, 3)])
async def test_a_budget_added_to_the_config_counts_the_periods_spend_so_far(
        harness: Harness, mode: str, scope: str, period: str, limit: float, counted: int) -> None:
    """Two calls yesterday and one today with no budget; then a restart with a budget. A day
    budget of $0.005 has room for one more call today ($0.002001 + $0.002186 fits, a second
    does not), a total one of $0.0082 for one more after the three ($0.006003 + $0.002186)."""
    model, ctx, config = SCOPES[scope]
    name = "r" if scope == "route" else "acme"
    clock = ManualClock(autojump=True, epoch=NOW)
    before = harness.settings(routes={"r": {"targets": ["fake/echo"]}}, state={"budgets": mode})
    first = harness.gateway(before, clock=clock)
    assert await paid_calls(first, model, ctx, 2) == 2
    clock.advance(3 * 3600)   # past midnight UTC
    assert await paid_calls(first, model, ctx, 1) == 1
    first.close()

    after = harness.settings(routes={"r": {"targets": ["fake/echo"]}}, state={"budgets": mode},
                             budgets={name: {**config, "limit_usd": limit, "period": period}})
    second = harness.gateway(after, clock=clock)
    assert await paid_calls(second, model, ctx, 4) == 1                # it let 2 (day) or 4 (total) through
    [status] = await second.budgets.status()
    assert status.spent_usd == pytest.approx((counted + 1) * CALL_COST)


@pytest.mark.parametrize("mode", ["state", "store"])
@pytest.mark.parametrize("scope", sorted(SCOPES))
async def test_a_budget_removed_and_added_back_counts_what_was_spent_while_it_was_off(
        harness: Harness, mode: str, scope: str) -> None:
    """The day's ledger row existed from before the budget was removed, so it was used as it
    stood: the two calls made while the budget was off were forgotten, and the budget let
    $0.002001 + $0.002186 through again although $0.006003 of its $0.005 was spent."""
    model, ctx, config = SCOPES[scope]
    name = "r" if scope == "route" else "acme"
    clock = ManualClock(autojump=True, epoch=NOW)
    routes = {"r": {"targets": ["fake/echo"]}}
    budgets = {name: {**config, "limit_usd": 0.005, "period": "day"}}
    on = harness.settings(routes=routes, state={"budgets": mode}, budgets=budgets)
    first = harness.gateway(on, clock=clock)
    assert await paid_calls(first, model, ctx, 1) == 1
    first.close()
    off = harness.gateway(harness.settings(routes=routes, state={"budgets": mode}), clock=clock)
    assert await paid_calls(off, model, ctx, 2) == 2
    off.close()
    again = harness.gateway(on, clock=clock)
    assert await paid_calls(again, model, ctx, 1) == 0
    [status] = await again.budgets.status()
    assert status.spent_usd == pytest.approx(3 * CALL_COST)


@pytest.mark.parametrize("mode", ["state", "store"])
async def test_a_key_budget_set_again_is_recounted_from_the_call_records(harness: Harness, mode: str) -> None:
    """What the admin API does when a key's budget is set again after it was removed: its
    counter (memory state here, or the ledger row in store mode) held the first call only."""
    gw = harness.gateway(state={"budgets": mode})
    budgeted = CallContext(key=KeyPolicy("k_1", budget=0.005))
    assert await paid_calls(gw, "fake/echo", budgeted, 1) == 1
    assert await paid_calls(gw, "fake/echo", CallContext(key=KeyPolicy("k_1")), 2) == 2   # no budget meanwhile
    await gw.budgets.recount(BudgetScope("key:k_1", 0.005, "total"))
    assert await paid_calls(gw, "fake/echo", budgeted, 1) == 0      # $0.002001 + $0.002186 would have fit
    [status] = await gw.budgets.usage([BudgetScope("key:k_1", 0.005, "total")])
    assert status.spent_usd == pytest.approx(3 * CALL_COST)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_replica_with_a_new_route_budget_counts_what_the_others_spent(pg_url: str, harness: Harness) -> None:
    """Replicas on one Redis and one PostgreSQL store: one started before the route had a
    budget and spent on it, one started after; the counter the second seeds in Redis starts from
    the first's call records."""
    from cloverleaf._engine import Engine
    from cloverleaf.gateway.state.redis import RedisState

    from .redis_support import fresh_prefix, redis_state, redis_url

    clock = ManualClock(autojump=True, epoch=NOW)
    prefix = fresh_prefix()

    def replica(**options: Any) -> Gateway:
        settings = harness.settings(store={"url": pg_url}, routes={"r": {"targets": ["fake/echo"]}}, **options)
        engine = Engine(settings)
        gw = Gateway(settings, engine, clock=clock, state=RedisState(redis_url(), prefix=prefix))
        harness.made.append((gw, engine))
        return gw

    async with redis_state(prefix):   # every key the replicas make is deleted afterwards
        early = replica()
        assert await paid_calls(early, "r", CallContext(), 2) == 2
        early.store.flush()
        late = replica(budgets={"r": {"limit_usd": 0.007}})
        assert await paid_calls(late, "r", CallContext(), 3) == 1     # $0.004002 spent before: room for one
        assert await late.state.budget_usage("route:r|total") == (pytest.approx(3 * CALL_COST), 0.0)



@pytest.mark.redis
@pytest.mark.postgres
async def test_a_route_budget_added_back_raises_the_counter_redis_kept(pg_url: str, harness: Harness) -> None:
    """Redis keeps a budget's counter across restarts: a process started with the budget back
    found it there and never seeded it, so what was spent while the budget was off went uncounted."""
    from cloverleaf._engine import Engine
    from cloverleaf.gateway.state.redis import RedisState

    from .redis_support import fresh_prefix, redis_state, redis_url

    clock = ManualClock(autojump=True, epoch=NOW)
    prefix = fresh_prefix()

    def replica(**options: Any) -> Gateway:
        settings = harness.settings(store={"url": pg_url}, routes={"r": {"targets": ["fake/echo"]}}, **options)
        engine = Engine(settings)
        gw = Gateway(settings, engine, clock=clock, state=RedisState(redis_url(), prefix=prefix))
        harness.made.append((gw, engine))
        return gw

    async with redis_state(prefix):
        first = replica(budgets={"r": {"limit_usd": 0.005}})
        assert await paid_calls(first, "r", CallContext(), 1) == 1
        first.store.flush()
        off = replica()
        assert await paid_calls(off, "r", CallContext(), 2) == 2
        off.store.flush()
        again = replica(budgets={"r": {"limit_usd": 0.005}})
        assert await paid_calls(again, "r", CallContext(), 1) == 0
        assert await again.state.budget_usage("route:r|total") == (pytest.approx(3 * CALL_COST), 0.0)

# -- the ledger's side: rows made from, and raised to, the call records ----------------------
@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    with store_url(request.param, tmp_path) as url:
        s = open_store(url, flush_ms=20, wall=lambda: NOW)
        yield s
        s.close()


def record(store: Store, n: int, *, at: float = NOW, key: str | None = "k_1", cost: float | None = 0.25,
           charged: float | None = None, status: str = "ok", route: str = "r", project: str | None = None) -> None:
    store.record_call(CallRecord(id=f"c{n}", created_at=at, operation="chat", requested_model=route, status=status,
                                 key_id=key, project=project, cost=cost, charged=charged))


def test_a_missing_ledger_row_is_made_from_the_periods_call_records(store: Store) -> None:
    record(store, 1, at=NOW - 86_400)                       # yesterday: not today's
    record(store, 2)
    record(store, 3, cost=None, charged=0.125)              # unknown cost: what its budgets were charged
    record(store, 4, cost=None, status="error")             # failed, billed nothing
    record(store, 5, key="k_2", project="acme")             # another key's
    store.flush()
    assert store.budget_open("key:k_1", "2023-11-14") == (0.375, 0.0)
    assert store.budget_open("key:k_1", "total") == (0.625, 0.0)
    assert store.budget_open("project:acme", "2023-11") == (0.25, 0.0)
    assert store.budget_open("route:r", "2023-11-14") == (0.625, 0.0)
    assert store.budget_open("route:elsewhere", "total") == (0.0, 0.0)
    record(store, 6)
    store.flush()
    assert store.budget_open("key:k_1", "total") == (0.625, 0.0)   # made once: the ledger counts from then on


def test_a_recount_raises_the_ledger_and_the_keys_total_and_never_lowers_them(store: Store) -> None:
    from cloverleaf.gateway.store import VirtualKeyRow

    store.create_virtual_key(VirtualKeyRow(id="k_1", secret_hash="h1"))
    record(store, 1, at=NOW - 86_400)
    record(store, 2)
    store.record_spend("key:k_1", "2023-11-14", 0.125)      # a call held the day budget once
    store.flush()
    assert store.budget_recount("key:k_1", "2023-11-14") == (0.25, 0.0)
    assert store.get_virtual_key("k_1").spent == pytest.approx(0.5)     # all its calls, not the one held
    store.record_spend("key:k_1", "2023-11-14", 1.0)         # spend the records lack ([store] record = "errors")
    store.flush()
    assert store.budget_recount("key:k_1", "2023-11-14") == (1.25, 0.0)
    assert store.get_virtual_key("k_1").spent == pytest.approx(1.5)


def test_a_budget_reservation_in_store_mode_starts_a_new_row_from_the_call_records(store: Store) -> None:
    record(store, 1, key=None)
    store.flush()
    ok, rid, spent, reserved = store.budget_reserve("route:r", "total", 0.3, 0.1, NOW)
    assert not ok and (spent, reserved) == (0.25, 0.0)
    ok, rid, spent, reserved = store.budget_reserve("route:r", "total", 0.4, 0.1, NOW)
    assert ok and rid is not None and (spent, reserved) == (0.25, 0.0)


def test_period_bounds_are_utc_days_and_months() -> None:
    from cloverleaf.gateway.store.budgets import period_bounds

    assert period_bounds("total") is None
    assert period_bounds("2023-11-14") == (1_699_920_000.0, 1_700_006_400.0)
    assert period_bounds("2023-12") == (1_701_388_800.0, 1_704_067_200.0)   # December ends with the year
    with pytest.raises(ValueError):
        period_bounds("yesterday")


def test_a_scopes_spend_is_summed_through_its_calls_index(tmp_path: Path) -> None:
    """The sum runs when a budget starts to apply, not per call; still, on a large table it must
    read one scope's calls of one period, not every call."""
    from cloverleaf.gateway.store.budgets import calls_spent

    s = open_store(f"sqlite:///{tmp_path / 'plan.db'}")
    try:
        with s.engine.connect() as conn:
            for scope, index in (("key:k_1", "ix_calls_key_created"), ("project:acme", "ix_calls_project_created"),
                                 ("route:r", "ix_calls_route_created")):
                query = sa.select(calls_spent(scope, "2023-11-14"))
                sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
                plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
                assert index in plan and "SCAN calls" not in plan, plan
    finally:
        s.close()


def test_the_call_records_are_summed_before_the_ledger_write_not_under_its_lock(store: Store) -> None:
    """A ledger row made or raised from the call records (a budget's first use in a process, a
    key given a budget, store-mode's first reservation) once summed them inside the write: on
    SQLite the write lock was held while the sum ran — 2.7 s for a route budget over 83,000
    calls — and the store's writer (every call record and its spend) waited. The sum is now a
    read of its own: no statement that writes reads ``calls``. A recount whose row already holds
    what the records show (a process's start, as a rule) writes nothing; one that must raise the
    row sums again under its lock (``test_budget_recount_race.py``)."""
    from cloverleaf.gateway.store import VirtualKeyRow

    store.create_virtual_key(VirtualKeyRow(id="k_1", secret_hash="h1"))
    record(store, 1)
    record(store, 2, key=None, route="other")
    store.record_spend("key:k_1", "2023-11-14", 0.25)       # its ledger row is up to date
    store.flush()
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        assert store.budget_open("route:r", "total") == (0.25, 0.0)
        assert store.budget_recount("key:k_1", "2023-11-14") == (0.25, 0.0)
        assert store.budget_reserve("route:other", "total", 1.0, 0.1, NOW)[:1] == (True,)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    writes = [s for s in statements if s.upper().startswith(("INSERT", "UPDATE"))]
    sums = [s for s in statements if s.upper().startswith("SELECT") and " FROM calls" in s]
    assert writes and len(sums) >= 3
    assert not [s for s in writes if " FROM calls" in s], writes
    assert store.get_virtual_key("k_1").spent == pytest.approx(0.25)
    assert store.budget_usage("route:other", "total") == (pytest.approx(0.25), pytest.approx(0.1))
