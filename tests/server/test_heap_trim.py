"""After a peak, a worker hands freed heap pages back to the OS (``server/heap.py``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable

import pytest

from cloverleaf._errors import ConfigError
from cloverleaf.server import heap
from cloverleaf.server.options import ServerOptions

PEAK = """
import sys
from cloverleaf.server.heap import malloc_trim

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

blocks = [bytearray(4096) for _ in range(20_000)]     # an 80 MiB peak of buffers
keep = blocks[::64]                                     # a few survivors pin the heap's top
del blocks
before = rss_mib()
malloc_trim()(0)
print(before, rss_mib())
"""


@pytest.mark.skipif(heap.malloc_trim() is None, reason="this C library has no malloc_trim (not glibc)")
def test_trimming_after_a_peak_returns_the_freed_pages() -> None:
    out = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True, check=True).stdout.split()
    before, after = float(out[0]), float(out[1])
    assert before - after > 40, (before, after)   # most of the 80 MiB the peak freed


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def test_the_trimmer_runs_on_its_interval_and_stops_when_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rounds are counted, not slept through: three rounds in 0.2 s was asked of a loop that a
    loaded machine may not run for that long."""
    calls: list[int] = []
    looks: list[int] = []          # one per round: the trimmer reads the free heap, then trims or not
    free = [heap.TRIM_THRESHOLD_BYTES]
    monkeypatch.setattr(heap, "malloc_trim", lambda: calls.append)
    monkeypatch.setattr(heap, "free_heap_bytes", lambda: looks.append(1) or free[0])
    task = asyncio.create_task(heap.trim_heap_periodically(0.01))
    await asyncio.wait_for(_until(lambda: len(calls) >= 3), 60)
    assert set(calls) == {0}
    free[0] = heap.TRIM_THRESHOLD_BYTES - 1          # too little free to be worth handing back
    seen, rounds = len(calls), len(looks)
    await asyncio.wait_for(_until(lambda: len(looks) >= rounds + 3), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(calls) == seen
    await asyncio.wait_for(heap.trim_heap_periodically(0), 1)   # 0: never, and returns at once


def test_free_heap_bytes_sees_a_peak_freed() -> None:
    if heap.free_heap_bytes() is None:
        pytest.skip("this C library has no mallinfo2 (glibc before 2.33, or not glibc)")
    code = ("from cloverleaf.server.heap import free_heap_bytes\n"
            "b = [bytearray(4096) for _ in range(5_000)]; k = b[::64]; del b\nprint(free_heap_bytes())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) >= 15 * 1024 * 1024


def test_the_interval_is_a_server_option() -> None:
    assert ServerOptions.from_settings({}, {}).heap_trim_seconds == 10.0
    assert ServerOptions.from_settings({"heap_trim_seconds": 0}, {}).heap_trim_seconds == 0.0
    with pytest.raises(ConfigError):
        ServerOptions.from_settings({"heap_trim": 1}, {})
    for bad in ("ten", -1, None):
        with pytest.raises(ConfigError, match="heap_trim_seconds must be"):
            ServerOptions.from_settings({"heap_trim_seconds": bad}, {})
