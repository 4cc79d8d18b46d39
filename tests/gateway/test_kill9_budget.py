"""kill -9 with budget counters in the state backend: at most one flush interval of spend is
missing from the ledger and nothing acknowledged is lost (memory and Redis state); with Redis
a restarted gateway never overspends."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cloverleaf._config import Settings
from cloverleaf._engine import Engine
from cloverleaf._errors import BudgetExceeded
from cloverleaf.gateway import Gateway, ManualClock

from .conftest import FAKE_PRICED, chat_request, upstream
from .redis_support import fresh_prefix, redis_url

LIMIT = 0.5
PROMPT = "x" * 1000
USAGE = {"input_tokens": 1000, "output_tokens": 1000}      # fake/echo: $1/M in, $2/M out
CALL_COST = 0.003
FLUSH_EVERY = 5                                             # calls per acknowledged ledger write

CHILD = textwrap.dedent("""
    import asyncio, sys
    from cloverleaf._config import ProviderSettings, Settings
    from cloverleaf._engine import Engine
    from cloverleaf._types import ChatRequest, Message
    from cloverleaf.gateway import Gateway, ManualClock

    def settings(url, prefix, db):
        # fake models are free; a nominal $1/M in, $2/M out makes the budget bite
        priced = {"fake": ProviderSettings("fake", input_cost_per_1k=0.001, output_cost_per_1k=0.002)}
        return Settings(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": %(limit)r}},
                        providers=priced,
                        store={"url": "sqlite:///" + db, "flush_ms": 600000, "batch_size": 10000},
                        state={"url": url, "prefix": prefix or None}, gateway=True, max_retries=0, env={})

    async def main(url, prefix, db):
        s = settings(url, prefix, db)
        gw = Gateway(s, Engine(s), clock=ManualClock(start=1000.0))
        gw.engine.fake.script.reply(text="ok", usage=%(usage)r, times=10_000)
        n = 0
        while True:
            req = ChatRequest(model="", messages=[Message.user(%(prompt)r)], max_tokens=1000)
            resp = await gw.achat("r", req)
            n += 1
            print("call", n, resp.cost, flush=True)
            sys.stdin.readline()               # the parent's go-ahead: it kills while we wait here
            if n %% %(every)d == 0:
                gw.store.flush()               # the writer commits: these calls are acknowledged
                print("flushed", n, flush=True)

    asyncio.run(main(*sys.argv[1:4]))
""") % {"limit": LIMIT, "usage": USAGE, "prompt": PROMPT, "every": FLUSH_EVERY}


def _ledger_spent(db: Path) -> float:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        row = conn.execute("SELECT spent FROM budgets WHERE scope = 'route:r' AND period = 'total'").fetchone()
    finally:
        conn.close()
    return float(row[0]) if row else 0.0


def _run_and_kill(script_dir: Path, url: str, prefix: str, db: Path) -> tuple[int, int]:
    """Run the child a call at a time until it is three calls past an acknowledged write, then
    kill -9 it while it waits for the next go-ahead (so it cannot run ahead of what was read);
    returns (calls it finished, calls acknowledged as written)."""
    script = script_dir / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), url, prefix, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    calls = acknowledged = 0
    try:
        for line in proc.stdout:
            kind, n, *_ = line.split()
            if kind == "call":
                calls = int(n)
                if acknowledged >= 50 and calls == acknowledged + 3:
                    break              # three calls past the last write: kill it there, waiting
                proc.stdin.write("\n")  # a call at a time, so the kill lands where the test says
                proc.stdin.flush()
            else:
                acknowledged = int(n)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    assert acknowledged >= 50 and calls == acknowledged + 3
    return calls, acknowledged


def test_kill9_with_memory_state_loses_at_most_one_flush_interval(tmp_path: Path) -> None:
    """In-memory counters die with the process: what the ledger lacks is bounded by the spend
    since its last write (the documented bound), and nothing acknowledged is lost."""
    db = tmp_path / "ledger.db"
    calls, acknowledged = _run_and_kill(tmp_path, "memory", "", db)
    ledger = _ledger_spent(db)
    assert acknowledged * CALL_COST - 1e-9 <= ledger <= calls * CALL_COST + 1e-9
    assert calls * CALL_COST - ledger <= (FLUSH_EVERY + 1) * CALL_COST + 1e-9


@pytest.mark.redis
async def test_kill9_leaves_at_most_one_flush_interval_unrecorded_and_never_an_overspend(tmp_path: Path) -> None:
    import redis

    url, prefix, db = redis_url(), fresh_prefix(), tmp_path / "ledger.db"
    calls, acknowledged = _run_and_kill(tmp_path, url, prefix, db)

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        counter = float(client.hget(f"{prefix}b:route:r|total", "spent") or 0.0)
        ledger = _ledger_spent(db)
        # everything acknowledged is in the ledger; nothing recorded that was not spent
        assert acknowledged * CALL_COST - 1e-9 <= ledger <= counter + 1e-9
        # the counter holds every finished call; what the ledger misses is under one flush interval
        assert counter >= calls * CALL_COST - 1e-9
        assert counter - ledger <= (FLUSH_EVERY + 1) * CALL_COST + 1e-9

        # a new gateway on the same Redis and ledger spends what is left, and not a cent more
        settings = Settings(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": LIMIT}},
                            providers=FAKE_PRICED,
                            store={"url": f"sqlite:///{db}"}, state={"url": url, "prefix": prefix},
                            gateway=True, max_retries=0, env={})
        engine = Engine(settings)
        gw = Gateway(settings, engine, clock=ManualClock(start=2000.0))
        try:
            upstream(gw).script.reply(text="ok", usage=USAGE, times=1000)
            more = 0
            with pytest.raises(BudgetExceeded):
                while True:
                    await gw.achat("r", chat_request(PROMPT, max_tokens=1000))
                    more += 1
            spent, reserved = await gw.state.budget_usage("route:r|total") or (0.0, 0.0)
            # the call in flight at the kill keeps its reservation (it may have been billed)
            assert spent == pytest.approx(counter + more * CALL_COST)
            assert spent + reserved <= LIMIT + 1e-9 and (calls + more) * CALL_COST <= LIMIT
            gw.store.flush()
            assert _ledger_spent(db) == pytest.approx(ledger + more * CALL_COST)
        finally:
            await gw.state.clear()
            await gw.aclose()
            engine.close()
    finally:
        client.close()
