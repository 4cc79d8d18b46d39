"""Whether an ``h1`` client is still there: the socket's TCP state, and what can be written to ask.

Why: a client that half-closes (``shutdown(SHUT_WR)``: ``nc -N``, ``socat``, health checks)
and one that hangs up send the same FIN, and a connection that has paused reading (requests
pipelined beyond what it holds) does not read even that. Linux's ``TCP_INFO`` tells the
states apart that matter: ``CLOSE_WAIT``, the client sent its FIN (read or not), and
``CLOSE``, it reset the connection, which a client that closed its socket does as soon as
anything reaches it. So the connection writes something harmless (:func:`probe_for`) and
looks for the reset: a half-closed client reads and skips it.
"""

from __future__ import annotations

import asyncio
import socket

#: before the answer's head: an interim answer, which an HTTP/1.1 client parses and skips even
#: when it did not ask for one (RFC 9110 §15.2)
PROBE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: in a chunked answer, between chunks: a leading zero of the next chunk's size (RFC 9112 §7.1,
#: ``chunk-size = 1*HEXDIG``): ``1a`` becomes ``01a``, the last chunk ``00``
CHUNK_PROBE = b"0"
#: the most 100 Continues one request is sent while reading is paused: Go's client before 1.24
#: refuses a sixth interim answer, and Node's fetch any it did not ask for
PAUSED_PROBES = 4
TCP_CLOSE = 7  # ``tcpi_state``: the client reset the connection (Linux)
TCP_CLOSE_WAIT = 8  # ``tcpi_state``: the client sent its FIN, and nothing more
CAN_SEE_RESETS = hasattr(socket, "TCP_INFO")


def tcp_state(transport: asyncio.Transport) -> int | None:
    """The socket's ``tcpi_state`` (Linux's TCP_INFO; elsewhere None)."""
    sock = transport.get_extra_info("socket")
    tcp_info = getattr(socket, "TCP_INFO", None)
    if sock is None or tcp_info is None:
        return None
    try:
        return int(sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 1)[0])
    except (OSError, AttributeError, ValueError):
        return None


def probe_for(started: bool, head_unsent: bool, chunked: bool, http_version: str) -> bytes:
    """What may be written to a client now without changing what it reads, for a request whose
    answer has ``started`` (its head still unsent: ``head_unsent``), framed ``chunked``:
    ``PROBE`` before the head (not to HTTP/1.0, which knows no 1xx), ``CHUNK_PROBE`` between
    the chunks of an answer on the wire; else nothing (the answer's own next write will do)."""
    if not started or head_unsent:
        return b"" if http_version == "1.0" else PROBE
    return CHUNK_PROBE if chunked else b""
