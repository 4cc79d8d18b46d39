"""Microbenchmark: what governance adds to one gateway call, in µs, per state backend.

Runs ``Gateway.achat`` over a provider call that returns a ready answer at once (so only
the gateway's own work is timed) with everything open (store recording every call, no
limits) and governed (a virtual key with an rpm limit and a
budget, a route with rpm/tpm limits and a budget, the store recording every call), and
prints µs per call for each and the difference: the governed bookkeeping per call. Calls
run one at a time and then 64 at a time. The same script runs against any checkout, so
before/after figures come from one command::

    PYTHONPATH=src python -m bench.governed_bookkeeping [--calls 3000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cloverleaf._config import Settings
from cloverleaf._context import CallContext, KeyPolicy
from cloverleaf._engine import Engine
from cloverleaf._types import ChatRequest, Message
from cloverleaf.gateway import Gateway, SystemClock

BIG = 10**9


def _settings(db: Path, state: dict[str, Any]) -> Settings:
    return Settings(routes={"open": {"targets": ["fake/echo"]}, "governed": {"targets": ["fake/echo"]}},
                    limits={"route:governed": {"rpm": BIG, "tpm": BIG * 1000, "max_wait": 0}},
                    budgets={"governed": {"limit_usd": float(BIG)}},
                    store={"url": f"sqlite:///{db}", "record": "all"}, state=state,
                    gateway=True, max_retries=0, env={})


async def _run(gw: Gateway, route: str, ctx: CallContext, calls: int, concurrency: int) -> float:
    req = ChatRequest(model="", messages=[Message.user("hello governed world")], max_tokens=64)
    gc.collect()
    start = time.perf_counter()
    if concurrency == 1:
        for _ in range(calls):
            await gw.achat(route, req, ctx)
    else:
        for _ in range(calls // concurrency):
            await asyncio.gather(*(gw.achat(route, req, ctx) for _ in range(concurrency)))
    return (time.perf_counter() - start) / calls * 1e6


async def measure(state: dict[str, Any], calls: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp) / "bench.db", state)
        engine = Engine(settings)
        gw = Gateway(settings, engine, clock=SystemClock())
        open_ctx = CallContext()
        answer = await engine.achat(gw.router.targets(gw.router.route("open"))[0].target,
                                    ChatRequest(model="", messages=[Message.user("hello")], max_tokens=64))

        async def ready(target: Any, req: Any) -> Any:
            return answer

        engine.achat = ready  # type: ignore[method-assign]
        key_ctx = CallContext(key=KeyPolicy(f"k_{uuid.uuid4().hex[:8]}", rpm=BIG, budget=float(BIG)))
        out: dict[str, float] = {}
        try:
            await _run(gw, "open", open_ctx, 300, 1)            # warm up both paths
            await _run(gw, "governed", key_ctx, 300, 1)
            for concurrency in (1, 64):
                opened, governed = [], []
                for _ in range(rounds):
                    opened.append(await _run(gw, "open", open_ctx, calls, concurrency))
                    governed.append(await _run(gw, "governed", key_ctx, calls, concurrency))
                o, g = statistics.median(opened), statistics.median(governed)
                out[f"open c={concurrency}"] = o
                out[f"governed c={concurrency}"] = g
                out[f"bookkeeping c={concurrency}"] = g - o
        finally:
            clear = getattr(gw.state, "clear", None)
            if clear is not None:
                await clear()
            await gw.aclose()
            engine.close()
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per measurement (default 3000)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per figure; the median is shown")
    parser.add_argument("--redis", default=None, help="also measure the Redis state backend at this URL")
    args = parser.parse_args(argv)
    backends = {"memory": {"url": "memory"}}
    if args.redis:
        backends["redis"] = {"url": args.redis, "prefix": f"cloverleaf-bench:{uuid.uuid4().hex}:"}
    print(f"python {sys.version.split()[0]}, {args.calls} calls per figure, median of {args.rounds}")
    for name, state in backends.items():
        figures = asyncio.run(measure(state, args.calls, args.rounds))
        for label, us in figures.items():
            print(f"{name:7s} {label:18s} {us:8.1f} µs/call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
