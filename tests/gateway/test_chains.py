"""``Gateway.register(target, priority=..., is_fallback=...)``: AgentLoom-style chains, the same
thing as ``[routes.NAME] targets``."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloverleaf._client import Client
from cloverleaf._config import Settings

from .conftest import Harness, chat_request, upstream


async def test_register_builds_the_chain_primaries_then_fallbacks_by_priority(harness: Harness) -> None:
    gw = harness.gateway()
    gw.register("fake/echo", priority=5, is_fallback=True)
    gw.register("fake/fail-500", priority=0)
    gw.register("fake/fail-503", priority=1, is_fallback=True)
    route = gw.register("fake/garbage", priority=9)
    assert [t.model for t in route.targets] == ["fake/fail-500", "fake/garbage", "fake/fail-503", "fake/echo"]
    resp = await gw.achat("default", chat_request("through the chain"))
    assert resp.text == "through the chain" and resp.metadata.target == "fake/echo"
    assert [r.json["model"] for r in upstream(gw).requests] == ["fail-500", "garbage", "fail-503", "echo"]


async def test_register_is_equivalent_to_a_routes_table(harness: Harness) -> None:
    configured = harness.gateway(routes={"smart": {"targets": ["fake/fail-500", "fake/echo"]}})
    coded = harness.gateway()
    coded.register("fake/echo", priority=0, is_fallback=True, route="smart")
    coded.register("fake/fail-500", priority=0, route="smart")
    assert [t.key for t in coded.router.route("smart").targets] == [
        t.key for t in configured.router.route("smart").targets]
    a = await configured.achat("smart", chat_request("same"))
    b = await coded.achat("smart", chat_request("same"))
    assert [x.target for x in a.metadata.attempts] == [x.target for x in b.metadata.attempts]


async def test_register_extends_a_configured_route_and_moves_a_target_registered_again(harness: Harness) -> None:
    gw = harness.gateway(routes={"smart": {"targets": ["fake/fail-500", "fake/fail-503"], "retries": 0}})
    gw.register("fake/echo", priority=1, is_fallback=True, route="smart")
    assert [t.model for t in gw.router.route("smart").targets] == ["fake/fail-500", "fake/fail-503", "fake/echo"]
    assert gw.router.route("smart").retries == 0  # the table's other settings stay
    route = gw.register("fake/echo", priority=-1, route="smart")  # promoted to the front
    assert [t.model for t in route.targets] == ["fake/echo", "fake/fail-500", "fake/fail-503"]
    with pytest.raises(TypeError, match="priority"):
        gw.register("fake/echo", priority="high", route="smart")  # type: ignore[arg-type]


def test_client_gateway_register_routes_calls_through_the_chain(tmp_path: Path) -> None:
    settings = Settings(env={}, max_retries=0, store={"url": f"sqlite:///{tmp_path / 'c.db'}"})
    with Client(settings) as client:
        client.gateway.register("fake/fail-500", priority=0)
        client.gateway.register("fake/echo", priority=0, is_fallback=True)
        resp = client.chat("default", "hello chain")
        assert resp.text == "hello chain" and resp.metadata.target == "fake/echo"
