"""Give the memory a peak freed back to the operating system.

A burst (hundreds of connections at once, each with its buffers, or a batch of large bodies)
raises a worker's resident memory; once it is over, Python and glibc's malloc hold on to most
of what they freed — pages in the middle of the heap are never returned on their own — so
resident memory stays at the high-water mark for the life of the process. ``malloc_trim(0)``
hands those free pages back (glibc 2.8+ releases whole free pages anywhere in the heap, not
only at its top). :func:`trim_heap_periodically` calls it every ``interval`` seconds: about a quarter of a
millisecond when there is nothing to give back, about 10 ms right after an 80 MiB peak
(measured here), with the GIL released (ctypes releases it around a foreign call; threads that
allocate meanwhile wait on malloc's lock). It runs only when the heap holds at least
``TRIM_THRESHOLD_BYTES`` free (``mallinfo2``), so a worker that never had a peak is left alone.
After a peak the heap keeps counting the pages it handed back as free, so the trim then runs every
interval, each time returning what the load freed since (pages handed back are faulted in again
when reused; a burst-only A/B in ``bench/README.md`` found no cost). Other C libraries (musl) have
no ``malloc_trim``: nothing is done there.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
from collections.abc import Callable

TRIM_INTERVAL_SECONDS = 10.0
#: free heap bytes worth handing back (below this, a trim would only churn page faults). It was
#: 8 MiB; the sustained run then peaked at 78.9 / 80.8 MiB (open / governed), with 1 MiB at
#: 77.9 / 76.8 (2026-12-03; trimming every interval had held 73–74 the day before).
TRIM_THRESHOLD_BYTES = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    """The C library the interpreter runs on: the process's own symbols (``dlopen(NULL)``), which
    needs no search (``ctypes.util.find_library`` runs ``ldconfig`` in a subprocess)."""
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def free_heap_bytes() -> int | None:
    """Bytes malloc holds free in its heap (glibc 2.33+ ``mallinfo2``), or None when unknown."""
    info = getattr(_libc(), "mallinfo2", None)
    if info is None:
        return None
    info.restype = _MallInfo2
    return int(info().fordblks)


async def trim_heap_periodically(interval: float = TRIM_INTERVAL_SECONDS) -> None:
    """Run until cancelled: trim the heap every ``interval`` seconds (0: never)."""
    trim = malloc_trim()
    if trim is None or interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        free = free_heap_bytes()
        if free is None or free >= TRIM_THRESHOLD_BYTES:
            trim(0)
