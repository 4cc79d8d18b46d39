"""Routing strategies: priority, weighted, lowest latency (moving average), lowest cost."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from cloverleaf._config import ModelEntry
from cloverleaf._engine import Engine
from cloverleaf.gateway import Gateway, ManualClock

from .conftest import Harness, chat_request


async def test_priority_keeps_the_listed_order(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/b", "fake/a"]}})
    assert {(await gw.achat("r", chat_request())).metadata.target for _ in range(5)} == {"fake/b"}
    assert [(r.name, r.strategy, r.targets) for r in gw.routes()] == [("r", "priority", ("fake/b", "fake/a"))]


async def test_weighted_picks_in_proportion(harness: Harness) -> None:
    settings = harness.settings(routes={"r": {"targets": ["fake/a", "fake/b"], "weights": [3, 1],
                                              "strategy": "weighted"}})
    engine = Engine(settings)
    gw = Gateway(settings, engine, clock=ManualClock(autojump=True), rng=random.Random(7))
    harness.made.append((gw, engine))
    picks = Counter([(await gw.achat("r", chat_request())).metadata.target for _ in range(400)])
    assert 250 < picks["fake/a"] < 350 and picks["fake/a"] + picks["fake/b"] == 400


async def test_lowest_latency_follows_the_moving_average(harness: Harness) -> None:
    clock = ManualClock(autojump=True)
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/slow", "fake/fast"], "strategy": "latency"}})
    original = gw.engine.achat

    async def timed(target, req):  # type: ignore[no-untyped-def]
        await clock.sleep(2.0 if target.model == "slow" else 0.1)  # upstream time, on the manual clock
        return await original(target, req)

    gw.engine.achat = timed  # type: ignore[method-assign]
    first = [(await gw.achat("r", chat_request())).metadata.target for _ in range(2)]
    assert first == ["fake/slow", "fake/fast"]  # unmeasured targets are tried first, once each
    later = {(await gw.achat("r", chat_request())).metadata.target for _ in range(5)}
    assert later == {"fake/fast"}
    assert (await gw.state.latencies(["fake/fast"]))["fake/fast"] == pytest.approx(100.0)


async def test_lowest_cost_first(harness: Harness) -> None:
    models = [ModelEntry(name="pricey", identifier="echo", provider="fake", input_cost_per_1k=0.01,
                         output_cost_per_1k=0.03),
              ModelEntry(name="cheap", identifier="echo", provider="fake", input_cost_per_1k=0.0001,
                         output_cost_per_1k=0.0002),
              ModelEntry(name="unpriced", identifier="echo", provider="openai")]
    gw = harness.gateway(routes={"r": {"targets": ["unpriced", "pricey", "cheap"], "strategy": "cost"}},
                         models=models, env={"OPENAI_API_KEY": "sk-unused"})
    resp = await gw.achat("r", chat_request("cheap please"))
    assert resp.metadata.target == "cheap"
    assert resp.cost is not None and resp.cost < 0.0001


async def test_routes_defined_in_code(harness: Harness) -> None:
    gw = harness.gateway()
    gw.add_route("coded", ["fake/fail-500", "fake/echo"])
    assert (await gw.achat("coded", chat_request("in code"))).text == "in code"
