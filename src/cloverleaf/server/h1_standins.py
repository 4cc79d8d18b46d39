"""What an ``h1`` connection feeds its bytes to instead of llhttp, and the request-head counter's states.

Split from :mod:`.h1_server`: ``H1Protocol.parser`` is llhttp while requests are parsed, and
one of these while they must not be:

- :class:`RawBody` after a request with an ``Upgrade`` header: its body by Content-Length, and
  nothing after it parsed (request smuggling);
- :data:`DISCARD` once parsing has stopped (a malformed request, a half-close);
- :class:`Held` while a pipelined request waits for the one in progress: the bytes after it
  are kept unparsed, up to :data:`HELD_CAP`, and reading goes on, so that a client hanging up
  meanwhile is seen at once (its FIN read) and the request in progress cancelled. Reading
  used to pause instead: the hang-up went unseen, the running upstream call ran to its end
  and the queued requests were then sent upstream for a client long gone. Parsing stops so
  that a client pipelining without end cannot queue without end; past the cap reading
  pauses (back-pressure), and the connection asks whether the client is still there
  instead (``H1Protocol._check_gone``).
"""

from __future__ import annotations

from typing import Protocol

# ``H1Protocol.head``: bytes of the head in progress that came in segments after the one it began
# in (>= 0), or one of these
NO_HEAD = -1  # no head in progress
HEAD_BEGAN = -2  # a head began in the segment being parsed
#: bytes held unparsed behind a waiting pipelined request before reading pauses
HELD_CAP = 65536


class Connection(Protocol):
    """What these use of their connection (:class:`~.h1_server.H1Protocol`)."""

    head: int

    def on_body(self, body: bytes) -> None: ...

    def on_message_complete(self) -> None: ...

    def pause_queued(self) -> None: ...


class RawBody:
    """The parser after a request with an ``Upgrade`` header (which llhttp hands over right
    after the head, skipping the body): the body, ``left`` bytes per its Content-Length, goes
    to the request; whatever follows is dropped, never parsed as another request."""

    __slots__ = ("conn", "left")

    def __init__(self, conn: Connection, left: int) -> None:
        self.conn = conn
        self.left = left

    def feed_data(self, data: bytes) -> None:
        left = self.left
        if left <= 0:
            return
        part = data[:left]
        self.left = left = left - len(part)
        self.conn.on_body(part)
        if left == 0:
            self.conn.on_message_complete()


class Discard:
    """The parser once parsing has stopped (a malformed request): bytes are dropped."""

    __slots__ = ()

    def feed_data(self, data: bytes) -> None:
        pass


DISCARD = Discard()


class Held:
    """The parser while a pipelined request waits: the bytes are kept for llhttp, which gets
    them when the last request it parsed starts (``H1Protocol._unhold``) or the client
    half-closes. ``head``: the connection's count of a head in progress, taken while the
    bytes are held (held bytes are no head's yet: a body behind a head cut at a segment's end
    would count as that head and make it a 431), given back with them."""

    __slots__ = ("conn", "data", "head")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.data = bytearray()
        self.head = NO_HEAD

    def feed_data(self, data: bytes) -> None:
        conn = self.conn
        if conn.head >= 0:
            self.head, conn.head = conn.head, NO_HEAD
        held = self.data
        held += data
        if len(held) > HELD_CAP:
            conn.pause_queued()
