"""A cold start never refuses a governed call for a wait it does not need.

On a fresh process the budget counters are not in the state backend yet: the first calls
seed them from the ledger (an ``await``) and ask again. They used to ask again at the
``now`` read before seeding, while calls that arrived meanwhile had been admitted at later
times; a window keeps its admissions in time order, so the stale call was placed behind them
and told to wait a few milliseconds — and where nothing may wait (a virtual key's limits)
that was a 429 ("rate limit rpm for 'route:…' exhausted") against an rpm of 100,000,000.
The benchmark's first governed burst (256 streams over one second) got ~40 of them.

Over Redis the same refusal came from concurrency alone, warm or cold: each caller reads
``now`` before its round trip, and the scripts run in whatever order the round trips land,
so a call that fitted was placed behind a call whose clock read was a moment later (150 of
256 streams refused on a warm burst). A call that fits now goes now (``Log.earliest``).
"""

from __future__ import annotations

import asyncio

import pytest

from cloverleaf._context import CallContext, KeyPolicy
from cloverleaf._errors import RateLimitExceeded
from cloverleaf.gateway import SystemClock

from .conftest import Harness, chat_request
from .redis_support import fresh_prefix, redis_url

CALLS = 256
HUGE_RPM, HUGE_TPM, HUGE_BUDGET = 100_000_000, 1_000_000_000, 1e9


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_governed_bursts_are_never_rate_limited_cold_or_warm(harness: Harness, backend: str) -> None:
    state = {} if backend == "memory" else {"url": f"{redis_url()}?prefix={fresh_prefix()}"}
    gw = harness.gateway(harness.settings(routes={"gov": {"targets": ["fake/echo"]}},
                                          limits={"gov": {"rpm": HUGE_RPM, "tpm": HUGE_TPM}},
                                          budgets={"gov": {"limit_usd": HUGE_BUDGET}}, state=state),
                         clock=SystemClock())
    key = KeyPolicy("k_bench", rpm=HUGE_RPM, tpm=HUGE_TPM, budget=HUGE_BUDGET)   # its limits never wait

    async def one(i: int) -> str | None:
        await asyncio.sleep(i * 0.002)   # arrivals spread out, as a client's burst: some while others seed
        try:
            async for _ in gw.astream("gov", chat_request(f"call {i}"), CallContext(key=key)):
                pass
        except RateLimitExceeded as exc:
            return str(exc)
        return None

    try:
        for burst in ("cold", "warm"):
            refusals = [r for r in await asyncio.gather(*(one(i) for i in range(CALLS))) if r is not None]
            assert (burst, refusals) == (burst, [])
        spent, reserved = await gw.state.budget_usage("key:k_bench|total") or (0.0, 0.0)
        assert spent > 0 and reserved == 0.0        # every call was admitted, charged and settled
    finally:
        if backend == "redis":
            await gw.state.clear()   # type: ignore[attr-defined]
            await gw.state.aclose()
