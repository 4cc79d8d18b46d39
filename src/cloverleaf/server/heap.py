"""Give the memory a peak freed back to the operating system.

A burst (hundreds of connections at once, each with its buffers, or a batch of large bodies)
raises a worker's resident memory; once it is over, Python and glibc's malloc hold on to most
of what they freed — pages in the middle of the heap are never returned on their own — so
resident memory stays at the high-water mark for the life of the process. ``malloc_trim(0)``
hands those free pages back (glibc 2.8+ releases whole free pages anywhere in the heap, not
only at its top). :func:`trim_heap_periodically` calls it every ``interval`` seconds: about a quarter of a
millisecond when there is nothing to give back, about 10 ms right after an 80 MiB peak
(measured here), with the GIL released (ctypes releases it around a foreign call; threads that
allocate meanwhile wait on malloc's lock). Other C libraries (musl) have no ``malloc_trim``: nothing
is done there.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
from collections.abc import Callable

TRIM_INTERVAL_SECONDS = 10.0


@functools.lru_cache(maxsize=1)
def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


async def trim_heap_periodically(interval: float = TRIM_INTERVAL_SECONDS) -> None:
    """Run until cancelled: trim the heap every ``interval`` seconds (0: never)."""
    trim = malloc_trim()
    if trim is None or interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        trim(0)
