"""RPM holds at the upstream: no window there ever sees more than ``rpm`` calls.

A call reaches the upstream some time after its admission (the rest of the gateway's work,
attachments, the network). Releasing waiting calls exactly one window after the admissions
they replace let an upstream see 121 calls within 59.9 s under ``rpm = 60``. A slot now
comes back one window *plus a margin* after its admission, so as long as a call reaches the
upstream within the margin, every window at the upstream holds at most ``rpm``.

Both tests count arrivals per window at the upstream, never speed: one process on a manual
clock with 60-s windows (each call takes a random 0–0.9 s to get from admission to the
upstream), and two processes sharing Redis on the real clock with 1-s windows against a real
HTTP mock that stamps each request's arrival.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf.gateway import ManualClock

from .conftest import Harness, chat_request
from .flaky_upstream import FlakyUpstream
from .redis_support import fresh_prefix, redis_url, wait_for

REPO = Path(__file__).resolve().parents[2]


def max_in_any_window(arrivals: list[float], window: float) -> int:
    """The most arrivals any half-open window ``[t, t + window)`` holds."""
    times = sorted(arrivals)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_the_window_count_itself() -> None:
    assert max_in_any_window([0.0, 59.9, 60.0, 60.1], 60.0) == 3
    assert max_in_any_window([0.0, 0.5, 1.0], 1.0) == 2


@pytest.mark.parametrize(("margin", "holds"), [(None, True), (0.0, False)], ids=["default-margin", "no-margin"])
async def test_rpm_holds_at_the_upstream_when_calls_take_time_to_get_there(
        harness: Harness, margin: float | None, holds: bool) -> None:
    clock = ManualClock()
    state = {} if margin is None else {"limit_margin_seconds": margin}
    gw = harness.gateway(clock=clock, limits={"fake": {"rpm": 20, "tpm": 0, "max_wait": 3600}}, state=state)
    rng = random.Random(12)
    arrivals: list[float] = []
    call_upstream = gw.engine.achat

    async def the_road_there(target: Any, req: Any) -> Any:
        await clock.sleep(rng.uniform(0.0, 0.9))      # admission → upstream, within the 1 s margin
        arrivals.append(clock.now())
        return await call_upstream(target, req)

    gw.engine.achat = the_road_there  # type: ignore[method-assign]
    tasks = [asyncio.ensure_future(gw.achat("fake/echo", chat_request(f"call {i}"))) for i in range(200)]
    await clock.drive(*tasks)
    assert all(t.result().text == f"call {i}" for i, t in enumerate(tasks))
    assert len(arrivals) == 200
    # the margin is what makes it hold: without one the upstream sees more than 20 in a minute
    assert (max_in_any_window(arrivals, 60.0) <= 20) is holds


@pytest.fixture
def mock() -> Iterator[FlakyUpstream]:
    server = FlakyUpstream().start()
    yield server
    server.stop()


def worker(url: str, prefix: str, base_url: str, calls: int, db: str) -> None:
    """One process on the shared Redis: ``calls`` concurrent calls to the mock under a
    50-per-second limit (1-s windows, 1-s margin), once every worker is ready."""
    import redis.asyncio as aioredis

    from cloverleaf._config import ProviderSettings, Settings
    from cloverleaf._engine import Engine
    from cloverleaf.gateway import Gateway, SystemClock

    async def run() -> dict[str, int]:
        settings = Settings(
            providers={"mock": ProviderSettings(name="mock", kind="openai", base_url=base_url,
                                                api_key_env="MOCK_KEY")},
            limits={"mock": {"rpm": 50, "tpm": 0, "max_wait": 60}},
            state={"url": url, "prefix": prefix, "limit_window_seconds": 1.0, "limit_margin_seconds": 1.0},
            store={"url": f"sqlite:///{db}"}, gateway=True, max_retries=0, env={"MOCK_KEY": "sk-mock-0123456789"},
            timeout=30.0, connect_timeout=10.0)
        engine = Engine(settings)
        gw = Gateway(settings, engine, clock=SystemClock())
        signals = aioredis.Redis.from_url(url)
        try:
            await signals.rpush(prefix + "ready", "1")
            for _ in range(90):   # short blocking reads: the test Redis drops a read idle for 5 s
                if await signals.blpop([prefix + "go"], timeout=2):
                    break
            else:
                raise AssertionError("the test never said go")
            results = await asyncio.gather(*(gw.achat("mock/m", chat_request(f"p{i}")) for i in range(calls)))
            return {"ok": len(results)}
        finally:
            await signals.aclose()
            await gw.aclose()
            engine.close()

    print(json.dumps(asyncio.run(run())))


@pytest.mark.redis
def test_two_processes_sharing_redis_hold_rpm_at_the_upstream(tmp_path: Path, mock: FlakyUpstream) -> None:
    import redis

    url, prefix = redis_url(), fresh_prefix()
    code = ("import sys; from tests.gateway.test_rpm_upstream import worker; "
            "worker(sys.argv[1], sys.argv[2], sys.argv[3], 100, sys.argv[4])")
    procs = [subprocess.Popen([sys.executable, "-c", code, url, prefix, mock.base_url, str(tmp_path / f"w{i}.db")],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    signals = redis.Redis.from_url(url, decode_responses=True)
    try:
        for _ in procs:
            assert wait_for(signals, prefix + "ready"), "a worker did not start"
        signals.rpush(prefix + "go", "1", "1")
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-3000:]
            assert json.loads(out.strip().splitlines()[-1]) == {"ok": 100}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for key in signals.scan_iter(match=prefix + "*"):
            signals.delete(key)
        signals.close()
    assert len(mock.arrivals) == 200
    assert max_in_any_window(mock.arrivals, 1.0) <= 50
