"""Sockets left behind on an event loop that has closed.

Pools belong to the loop their connections were opened on, and each ``asyncio.run()`` makes a
new loop and closes it at the end. An asyncio transport's ``close()`` only schedules the
socket's close as a callback on its loop, and a closed loop never runs another callback
(``close()`` even raises). So pools of a closed loop have their socket objects closed here,
directly: without it each finished loop kept its idle connections open (an fd here, a slot on
the upstream) until a garbage collection found them, and the collector then warned of an
"unclosed transport" for each.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any


def running_loop() -> asyncio.AbstractEventLoop | None:
    """This thread's running event loop, or None: a backend's ``close()`` closes that loop's own
    pools itself and leaves the others to their loops, or to :func:`close_socket` once closed."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def close_socket(transport: asyncio.BaseTransport | None) -> None:
    """Close the socket under ``transport``, whose loop can no longer do it, and mark the
    transport (and the TCP one under TLS) closed as the loop's callback would have, so its
    finalizer finds nothing left to warn about. A transport that keeps no socket object of the
    standard library's (uvloop's) is left to its own finalizer."""
    if transport is None:
        return
    found = transport.get_extra_info("socket")
    sock = getattr(found, "_sock", found)  # asyncio hands out a TransportSocket around the socket
    if not isinstance(sock, socket.socket):
        return
    sock.close()
    layers: list[Any] = [transport, getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)]
    for layer in layers:
        if getattr(layer, "_sock", None) is not None:  # a selector transport: its finalizer looks here
            layer._sock = None
        if getattr(layer, "_closed", None) is False:  # the TLS transport: likewise
            layer._closed = True

