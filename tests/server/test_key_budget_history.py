"""A budget put on a virtual key counts what the key spent before it, through the admin API.

Only calls that hold a budget reservation reach the ledger, so a key that spent with no budget
(or under another ``budget_period``, or while its budget was removed) used to start its new
budget at $0: it overspent it, and ``GET /admin/keys/{id}`` said ``"spent": 0.0``. The period's
spend so far now counts, from the call records, on SQLite with in-memory state as on PostgreSQL
with Redis shared by two replicas.

"priced" costs $0.004 a call here (2 tokens in, 2 out, at $1 per 1k each), and a call with
``max_tokens=10`` reserves $0.095 first (its prompt's token bound plus 10): it is admitted
while spent + 0.095 <= the budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]
CALL_COST = 0.004


def call(live: Live, secret: str) -> int:
    """One priced call with ``secret``: 200, or the status it was refused with."""
    try:
        live.openai(secret).chat.completions.create(model="priced", messages=HELLO, max_tokens=10)
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def calls(live: Live, key: dict[str, Any], n: int) -> list[int]:
    """``n`` calls with the key, their records in the store: a call's record is queued by the
    bookkeeping that runs after its answer is sent, which a flush waits for (a budget set after
    a call the server is still settling cannot count it: README says so)."""
    store = live.state.backend.store

    def recorded() -> int:
        store.flush()
        return sum(row.calls for row in store.spend("key") if row.group == key["id"])

    before = recorded()
    statuses = [call(live, key["key"]) for _ in range(n)]
    assert recorded() >= before + n   # a flush waits for the records of calls already answered
    return statuses


def patch_key(live: Live, key_id: str, **fields: Any) -> dict[str, Any]:
    with live.http(MASTER) as http:
        r = http.patch(f"/admin/keys/{key_id}", json=fields)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def spent_by(live: Live, key_id: str) -> float:
    with live.http(MASTER) as http:
        return float(http.get(f"/admin/keys/{key_id}").json()["spent"])


# -- one server: SQLite, state in memory ------------------------------------------------
def test_a_budget_given_to_a_key_that_spent_counts_that_spend(secured_server: Live) -> None:
    key = create_key(secured_server, name="spent-first")
    assert calls(secured_server, key, 5) == [200] * 5     # $0.020, no budget
    shown = patch_key(secured_server, key["id"], budget=0.1)
    assert call(secured_server, key["key"]) == 402                             # 0.020 + 0.095 > 0.1
    assert shown["spent"] == pytest.approx(5 * CALL_COST)                        # it said 0.0
    assert spent_by(secured_server, key["id"]) == pytest.approx(5 * CALL_COST)
    assert secured_server.state.backend.store.get_virtual_key(key["id"]).spent == pytest.approx(5 * CALL_COST)


def test_a_budget_switched_to_another_period_counts_that_periods_spend(secured_server: Live) -> None:
    key = create_key(secured_server, name="total-then-day", budget=0.11)
    assert calls(secured_server, key, 5) == [200] * 4 + [402]   # $0.016 of $0.11
    shown = patch_key(secured_server, key["id"], budget_period="day")
    assert call(secured_server, key["key"]) == 402              # a fresh $0.11 for today let it spend again
    assert shown["spent"] == pytest.approx(4 * CALL_COST)       # today's spend, made under the total budget


def test_a_budget_removed_and_set_again_counts_the_spend_made_without_it(secured_server: Live) -> None:
    key = create_key(secured_server, name="off-and-on", budget=0.11)
    assert calls(secured_server, key, 1) == [200]             # its counter exists now, at $0.004
    patch_key(secured_server, key["id"], budget=None)
    assert calls(secured_server, key, 3) == [200] * 3
    shown = patch_key(secured_server, key["id"], budget=0.11)
    assert call(secured_server, key["key"]) == 402              # the old counter said $0.004
    assert shown["spent"] == pytest.approx(4 * CALL_COST)


def test_a_recount_that_failed_is_done_when_the_change_is_sent_again(secured_server: Live,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The state backend failing during the recount leaves the budget stored (the admin is told
    503); sending the change again must recount, though the budget no longer "starts" then."""
    from cloverleaf._errors import StateUnavailable

    key = create_key(secured_server, name="blink", budget=0.11)
    assert calls(secured_server, key, 1) == [200]
    patch_key(secured_server, key["id"], budget=None)
    assert calls(secured_server, key, 3) == [200] * 3
    budgets = secured_server.state.backend.gateway.budgets
    real, failures = budgets.recount, [StateUnavailable("the state backend blinked")]

    async def flaky(scope: Any) -> None:
        if failures:
            raise failures.pop()
        await real(scope)

    monkeypatch.setattr(budgets, "recount", flaky)
    with secured_server.http(MASTER) as http:
        assert http.patch(f"/admin/keys/{key['id']}", json={"budget": 0.11}).status_code == 503
    shown = patch_key(secured_server, key["id"], budget=0.11)   # the same change, sent again
    assert call(secured_server, key["key"]) == 402
    assert shown["spent"] == pytest.approx(4 * CALL_COST)


def test_a_new_limit_on_the_same_budget_keeps_its_count(secured_server: Live) -> None:
    key = create_key(secured_server, name="raised", budget=0.11)
    assert calls(secured_server, key, 2) == [200] * 2
    assert patch_key(secured_server, key["id"], budget=0.2)["spent"] == pytest.approx(2 * CALL_COST)
    assert call(secured_server, key["key"]) == 200


# -- two replicas: one PostgreSQL store, one Redis -------------------------------------
@pytest.fixture
def replicas() -> Iterator[tuple[Live, Live]]:
    from ..gateway.redis_support import fresh_prefix, redis_state, redis_url
    from ..gateway.stores import fresh_postgres_database

    prefix = fresh_prefix()
    with fresh_postgres_database() as url:
        config = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url},
                          state={"url": redis_url(), "prefix": prefix})
        first = start_live(config)
        second = start_live(config)
        try:
            yield first, second
        finally:
            stop_live(first)
            stop_live(second)

            async def forget_the_keys() -> None:
                async with redis_state(prefix):   # deletes what the replicas made under the prefix
                    pass

            asyncio.run(forget_the_keys())


def caught_up(live: Live) -> None:
    """A replica sees key changes made elsewhere now, as it would within ``SYNC_SECONDS``."""
    assert live.state.keys is not None
    live.state.keys.forget()


@pytest.mark.redis
@pytest.mark.postgres
def test_replicas_count_a_keys_spend_before_its_budget(replicas: tuple[Live, Live]) -> None:
    a, b = replicas
    key = create_key(a, name="across")
    assert calls(b, key, 5) == [200] * 5      # spent through the other replica
    shown = patch_key(a, key["id"], budget=0.1)
    caught_up(b)
    assert [call(b, key["key"]), call(a, key["key"])] == [402, 402]
    assert shown["spent"] == pytest.approx(5 * CALL_COST)


@pytest.mark.redis
@pytest.mark.postgres
def test_replicas_do_not_trust_a_redis_counter_left_from_an_earlier_budget(replicas: tuple[Live, Live]) -> None:
    a, b = replicas
    key = create_key(a, name="stale", budget=0.11)
    assert calls(b, key, 1) == [200]                             # Redis holds its counter: $0.004
    patch_key(a, key["id"], budget=None)
    caught_up(b)
    assert calls(b, key, 3) == [200] * 3
    shown = patch_key(a, key["id"], budget=0.11)
    caught_up(b)
    assert [call(b, key["key"]), call(a, key["key"])] == [402, 402]   # Redis said $0.004
    assert shown["spent"] == pytest.approx(4 * CALL_COST)
