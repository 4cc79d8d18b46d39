"""The sync twins run the async core on a private loop thread: interruptions, threads, misuse."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from cloverleaf.gateway.bridge import LoopThread

from .conftest import Harness, chat_request

CTRL_C = textwrap.dedent("""
    import os, signal, sys, threading
    from cloverleaf import Client, Settings

    settings = Settings(routes={"r": {"targets": ["fake/echo+drip-50ms"]}}, budgets={"r": {"limit_usd": 5.0}},
                        store={"url": "sqlite:///" + sys.argv[1]}, env={}, max_retries=0)
    # a shell that starts the suite in the background (`cmd &`) hands its children SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler: install Ctrl-C's own
    signal.signal(signal.SIGINT, signal.default_int_handler)
    client = Client(settings)
    seen = 0
    try:
        # 80 chunks 50 ms apart: 4 s for the signal to land even on a loaded machine (it lands in ~0.1 s)
        for event in client.stream("r", " ".join(["word"] * 80)):
            seen += 1
            if seen == 2:   # Ctrl-C while the next chunk is awaited
                threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT)).start()
    except BaseException as exc:
        print(type(exc).__name__)
    client.gateway.store.flush()
    [call] = client.gateway.store.recent_calls(1)
    gw = client.gateway
    print(call.status, gw._bridge.run(gw.state.budget_usage("route:r|total"))[1])
    client.close()
""")


def test_ctrl_c_during_a_sync_stream_raises_keyboard_interrupt_and_cleans_up(tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C)
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "c.db")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:2] == ["KeyboardInterrupt", "cancelled 0.0"], out.stdout + out.stderr[-3000:]


async def test_calling_a_sync_twin_from_the_private_loop_is_refused() -> None:
    bridge = LoopThread()
    try:
        async def inner() -> None:
            bridge.run(asyncio.sleep(0))

        with pytest.raises(RuntimeError, match="use the async one"):
            await asyncio.to_thread(bridge.run, inner())
    finally:
        bridge.close()


def test_sync_twins_from_many_threads_and_from_inside_a_running_loop(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/fail-500", "fake/echo"]}})
    results: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        text = gw.chat("r", chat_request(f"thread {i}")).text
        with lock:
            results.append(text)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(f"thread {i}" for i in range(16))

    async def blocking_call_inside_a_loop() -> str:
        return gw.chat("r", chat_request("inside a loop")).text   # blocks this loop, never deadlocks

    assert asyncio.run(blocking_call_inside_a_loop()) == "inside a loop"


@pytest.mark.filterwarnings(  # 3.12+ warns on every fork with threads running; forking one is what this tests
    "ignore:This process .* is multi-threaded, use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_runs_sync_twins_on_a_loop_thread_of_its_own() -> None:
    """A bridge used before a fork (multiprocessing's fork start method, gunicorn --preload,
    celery prefork): the child inherits the loop object but not its thread, and its first sync
    call waited forever on a loop nobody ran. The parent's loop must go on working too."""
    bridge = LoopThread()

    async def whose() -> tuple[int, int]:
        return os.getpid(), threading.get_ident()

    parent = bridge.run(whose())
    pid = os.fork()
    if pid == 0:   # the child: report by exit status only, never return into pytest
        signal.alarm(30)   # a hang guard: a child stuck on the parent's loop is killed, not waited for
        try:
            ok = bridge.run(whose())[0] == os.getpid()
            bridge.close()
        except BaseException:  # noqa: BLE001 - any failure is the child's answer
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert bridge.run(whose()) == parent   # the parent's own loop thread, untouched by the child
    bridge.close()
