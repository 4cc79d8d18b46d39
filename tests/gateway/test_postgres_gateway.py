"""The whole gateway on a real PostgreSQL store: records, traces and a concurrent budget."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from cloverleaf._errors import BudgetExceeded
from cloverleaf.gateway import SystemClock

from .conftest import Harness, chat_request, upstream
from .stores import fresh_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


async def test_budget_and_records_on_postgres(harness: Harness, pg_url: str) -> None:
    gw = harness.gateway(harness.settings(routes={"r": {"targets": ["fake/echo"]}},
                                          budgets={"r": {"limit_usd": 0.01}}, store={"url": pg_url}),
                         clock=SystemClock())
    assert gw.store.dialect == "postgresql"
    upstream(gw).script.reply(text="paid", usage={"input_tokens": 1, "output_tokens": 1000}, times=30)
    trace = gw.traces.create(metadata={"db": "pg"})

    async def one() -> str:
        try:
            return (await gw.achat("r", chat_request(max_tokens=1000))).text
        except BudgetExceeded:
            return "refused"

    results = await asyncio.gather(*(one() for _ in range(30)))
    assert results.count("paid") == 4
    gw.store.flush()
    spent, reserved = gw.store.budget_usage("route:r", "total")
    assert spent == pytest.approx(4 * 0.002001) and spent <= 0.01 and reserved == pytest.approx(0.0)
    gw.traces.complete(trace.id)
    assert gw.traces.get(trace.id).completed
    gw.store.flush()
    assert {r.group: r.calls for r in gw.store.spend("model")} == {"fake/echo": 4, "-": 26}
