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

from cloverleaf._config import ModelEntry
from cloverleaf._context import CallContext
from cloverleaf._errors import BudgetExceeded
from cloverleaf.gateway import Gateway, ManualClock
from cloverleaf.gateway.model_budgets import spend_by_model
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
        assert exc.scope == "route:fake/echo"
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
