"""The dispatcher's after-response bookkeeping: every job awaited exactly once, a failing job
logged without failing the request, and a cancelled request's remaining jobs still run; its
handover (what a store flush waits for) is closed once they all have, and only then."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cloverleaf.gateway.store.handovers import Handovers
from cloverleaf.server.fast_path import _run_jobs


async def test_every_job_runs_once_and_a_failure_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    async def ok(name: str) -> None:
        ran.append(name)

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("state backend went away")

    handovers = Handovers()
    with caplog.at_level(logging.WARNING, logger="cloverleaf.server"):
        await _run_jobs([ok("a"), broken(), ok("b")], handovers, handovers.open())
    assert ran == ["a", "broken", "b"] and handovers.in_flight == 0   # a failure closes it too: no reader waits
    assert "RuntimeError" in caplog.text and "went away" not in caplog.text  # type names only, as elsewhere


async def test_jobs_left_by_a_cancelled_request_still_run() -> None:
    started = asyncio.Event()
    ran: list[str] = []

    async def slow() -> None:
        started.set()
        await asyncio.sleep(10)

    async def settle(name: str) -> None:
        ran.append(name)

    handovers = Handovers()
    gate = asyncio.Event()

    async def held(name: str) -> None:
        await gate.wait()
        ran.append(name)

    task = asyncio.ensure_future(_run_jobs([slow(), settle("limits"), held("budget")], handovers, handovers.open()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(5):  # the rest runs in a task of its own
        await asyncio.sleep(0)
    assert ran == ["limits"] and handovers.in_flight == 1   # the orphaned rest holds the handover open
    gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert ran == ["limits", "budget"] and handovers.in_flight == 0
