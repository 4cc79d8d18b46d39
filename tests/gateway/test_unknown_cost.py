"""A call whose usage or cost is unknown is never counted as free.

An answer without a ``usage`` object has ``usage.reported`` False and ``cost`` None; the gateway
settles it as it settles an interrupted call: its token estimate stays booked against tpm and its
budgets are charged the reservation. The call record keeps that charge apart from ``cost``
(``charged``), so spend reports agree with the budget ledger and say how many calls had no cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloverleaf
from cloverleaf._config import ModelEntry, Settings
from cloverleaf._errors import AllTargetsFailed, StreamInterrupted

from .conftest import Harness, chat_request, upstream
from .openai_mock import OpenAIMock


@pytest.fixture
def mock() -> Iterator[OpenAIMock]:
    m = OpenAIMock()
    m.report_usage = False
    yield m
    m.close()


def client(tmp_path: Path, mock: OpenAIMock, **settings: Any) -> cloverleaf.Client:
    models = [ModelEntry("priced", "m", "mock", input_cost_per_1k=0.01, output_cost_per_1k=0.01)]
    s = Settings(providers={"mock": mock.provider()}, models=models, routes={"r": {"targets": ["priced"]}},
                 env={"MOCK_KEY": "k"}, gateway=True, store={"url": f"sqlite:///{tmp_path / 'calls.db'}"},
                 max_retries=0, **settings)
    return cloverleaf.Client(s)


def test_an_answer_without_usage_is_charged_its_reservation(tmp_path: Path, mock: OpenAIMock) -> None:
    with client(tmp_path, mock, budgets={"r": {"limit_usd": 100.0}}) as c:
        resp = c.chat("r", "hi", max_tokens=100)
        assert resp.usage.reported is False and resp.cost is None
        [status] = asyncio.run(c.gateway.budgets.status())   # memory state: any loop may read it
        assert status.spent_usd > 0.0                        # not the made-up $0 it was
        c.gateway.store.flush()
        [record] = c.gateway.store.recent_calls()
        assert record.cost is None and record.charged == pytest.approx(status.spent_usd)
        [row] = c.gateway.store.spend("route")
        assert row.cost == pytest.approx(status.spent_usd) and row.unknown_cost == 1


def test_an_answer_without_usage_keeps_its_token_estimate_booked(tmp_path: Path, mock: OpenAIMock) -> None:
    # each call is estimated at 100 output tokens and more: tpm 250 admits two, whatever they say they used
    limits = {"target:priced": {"tpm": 250, "max_wait": 0}}
    with client(tmp_path, mock, limits=limits) as c:
        for _ in range(2):
            assert c.chat("r", "hi", max_tokens=100).usage.reported is False
        with pytest.raises(AllTargetsFailed, match="tpm"):
            c.chat("r", "hi", max_tokens=100)
    assert mock.chats == 2


async def test_an_interrupted_stream_records_what_its_budget_was_charged(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}})
    upstream(gw).script.reset_after(2)
    with pytest.raises(StreamInterrupted):
        async for _ in gw.astream("r", chat_request("one two three four five six", max_tokens=1000)):
            pass
    [status] = await gw.budgets.status()
    assert status.spent_usd > 0.0
    gw.store.flush()
    [record] = gw.store.recent_calls()
    assert record.status == "interrupted" and record.cost is None
    assert record.charged == pytest.approx(status.spent_usd)
    [row] = gw.store.spend("route")
    assert row.cost == pytest.approx(status.spent_usd) and row.unknown_cost == 1


async def test_a_failure_that_billed_nothing_is_not_of_unknown_cost(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/fail-500"]}}, budgets={"r": {"limit_usd": 1.0}})
    with pytest.raises(Exception):  # noqa: B017 - the point is the report
        await gw.achat("r", chat_request(max_tokens=1000))
    gw.store.flush()
    [row] = gw.store.spend("route")
    assert row.cost == 0.0 and row.unknown_cost == 0


async def test_a_stream_cut_after_output_without_a_budget_is_of_unknown_cost_at_its_target(harness: Harness) -> None:
    """Closed by its consumer (Ctrl-C in `cloverleaf chat`, a client hanging up on serve) or broken
    upstream, after output: nothing was reserved, so nothing was charged, and the record had no
    target, no cost and no charge. `spend` showed $0 under "-" with no call of unknown cost."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}})
    agen = gw.astream("r", chat_request("one two three four five six", max_tokens=1000))
    assert (await agen.__anext__()).type == "text"
    await agen.aclose()  # type: ignore[attr-defined]
    upstream(gw).script.reset_after(2)
    with pytest.raises(StreamInterrupted):
        async for _ in gw.astream("r", chat_request("one two three four five six", max_tokens=1000)):
            pass
    gw.store.flush()
    records = gw.store.recent_calls()
    assert sorted(r.status for r in records) == ["cancelled", "interrupted"]
    assert all(r.target == "fake/echo" and r.provider == "fake" and r.cost is None for r in records)
    for by, group in (("model", "fake/echo"), ("provider", "fake"), ("route", "r")):
        [row] = gw.store.spend(by)
        assert (row.group, row.calls, row.unknown_cost) == (group, 2, 2), by


async def test_a_stream_cancelled_before_output_is_not_of_unknown_cost(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/fail-500"]}})
    with pytest.raises(Exception):  # noqa: B017 - the point is the report
        async for _ in gw.astream("r", chat_request(max_tokens=1000)):
            pass
    gw.store.flush()
    [row] = gw.store.spend("route")
    assert row.unknown_cost == 0
