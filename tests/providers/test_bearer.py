"""The shared refresh of :mod:`cloverleaf.providers.bearer` when callers are cancelled: a waiter
that gives up does not cancel the others' refresh, and an owner that gives up hands the refresh
to a waiter instead of leaving it hanging. The token endpoint is a coroutine the test controls."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from cloverleaf._http import HttpRequest, HttpResponse
from cloverleaf.providers.bearer import BearerTokens


class Grant:
    key: Hashable = "grant"

    def token_request(self, now: float) -> HttpRequest:
        return HttpRequest("POST", "http://127.0.0.1:9/token")

    def read_token(self, resp: HttpResponse) -> tuple[str, float]:
        return resp.text, 3600.0


class Endpoint:
    """Answers token requests in order, each when the test releases it."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()

    async def __call__(self, req: HttpRequest) -> HttpResponse:
        self.calls += 1
        self.arrived.set()
        await self.release.wait()
        return HttpResponse(200, {}, f"tok-{self.calls}".encode())


def test_a_cancelled_waiter_leaves_the_shared_refresh_running() -> None:
    async def run() -> list[str]:
        tokens, endpoint, grant = BearerTokens(clock=lambda: 1000.0), Endpoint(), Grant()
        owner = asyncio.ensure_future(tokens.atoken(grant, endpoint))
        await endpoint.arrived.wait()
        quitter = asyncio.ensure_future(tokens.atoken(grant, endpoint))
        stayer = asyncio.ensure_future(tokens.atoken(grant, endpoint))
        await asyncio.sleep(0)
        quitter.cancel()
        endpoint.release.set()
        return [await owner, await stayer, str(endpoint.calls), str(quitter.cancelled())]

    assert asyncio.run(run()) == ["tok-1", "tok-1", "1", "True"]


def test_a_cancelled_owner_hands_the_refresh_to_a_waiter() -> None:
    async def run() -> tuple[str, int]:
        tokens, endpoint, grant = BearerTokens(clock=lambda: 1000.0), Endpoint(), Grant()
        owner = asyncio.ensure_future(tokens.atoken(grant, endpoint))
        await endpoint.arrived.wait()
        waiter = asyncio.ensure_future(tokens.atoken(grant, endpoint))
        await asyncio.sleep(0)
        owner.cancel()
        await asyncio.sleep(0)
        endpoint.release.set()
        return await waiter, endpoint.calls

    assert asyncio.run(run()) == ("tok-2", 2)   # the waiter made the exchange the owner abandoned
