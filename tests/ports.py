"""A loopback port for a server a test starts itself (``cloverleaf serve --port N``, a replica).

A port the kernel hands out as free (``bind(("127.0.0.1", 0))``) comes from the ephemeral range,
the same range every outgoing connection on the machine takes its source port from: in the
seconds between picking it and the server binding it, any client (a test's, PostgreSQL's, a
browser's) may take it, and the server fails to start with "address in use". So the port is
picked below that range, where no outgoing connection ever lands, and checked free there.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

#: The lowest port tried: above the well-known and most registered services' ports.
LOWEST = 10_000


def _ephemeral_low() -> int:
    """Where the kernel's ephemeral (source) ports start (Linux: 32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on, outside the ephemeral range when there is room."""
    high = _ephemeral_low()
    for _ in range(200) if high - LOWEST > 1_000 else ():
        port = random.randrange(LOWEST, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:   # no room below the range: the kernel's pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
