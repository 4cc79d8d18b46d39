"""Server-Sent Events framing, decoded incrementally with no I/O.

Follows the WHATWG event-stream rules that matter for LLM APIs: lines end in ``\\n``,
``\\r\\n`` or ``\\r`` (Gemini sends ``\\r\\n\\r\\n``); ``data:`` lines accumulate; a blank
line dispatches; ``:`` lines are comments (keep-alives); one optional space after the colon
is stripped. Bytes may be split anywhere, including inside a UTF-8 sequence or between
``\\r`` and ``\\n``: the decoder yields the same events for any split. One leading U+FEFF
(a UTF-8 byte order mark, which .NET proxies write) is ignored, as the rules say: read as part
of the first line it would hide the first event, and the answer would look whole without it.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(slots=True)
class ServerSentEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    __slots__ = ("_utf8", "_buffer", "_pending_cr", "_data", "_event", "_id", "_retry", "_has_data", "_clean")

    def __init__(self) -> None:
        # "utf-8-sig": one leading BOM dropped, even split across chunks; UTF-8 from then on
        self._utf8 = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._buffer = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._has_data = False
        #: nothing pending (see :meth:`whole_data_payloads`); known after the first :meth:`feed`
        self._clean = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        events = self._feed(chunk)
        self._clean = (not self._buffer and not self._pending_cr and not self._has_data and self._event is None
                       and self._retry is None and self._utf8.getstate() == (b"", 0))
        return events

    def _feed(self, chunk: bytes) -> list[ServerSentEvent]:
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if self._pending_cr:
            # a "\r" ended the previous chunk: a "\n" starting this one belongs to it
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        elif not self._buffer and not self._has_data and self._event is None and self._retry is None:
            fast = self._whole_data_events(text)
            if fast is not None:
                return fast
        events: list[ServerSentEvent] = []
        buf = self._buffer + text
        start = 0
        n = len(buf)
        # next "\n" and "\r" positions, each searched again only once passed (linear per chunk)
        nl = buf.find("\n")
        cr = buf.find("\r")
        while nl != -1 or cr != -1:
            if cr == -1 or (nl != -1 and nl < cr):
                line, start = buf[start:nl], nl + 1
            else:
                line = buf[start:cr]
                if cr + 1 < n:
                    start = cr + 2 if buf[cr + 1] == "\n" else cr + 1
                else:
                    start = cr + 1
                    self._pending_cr = True
            if nl != -1 and nl < start:
                nl = buf.find("\n", start)
            if cr != -1 and cr < start:
                cr = buf.find("\r", start)
            event = self._line(line)
            if event is not None:
                events.append(event)
        self._buffer = buf[start:]
        return events

    def whole_data_payloads(self, chunk: bytes) -> list[bytes] | None:
        """The ``data`` of each event in ``chunk`` as bytes, when ``chunk`` is whole ``data:``
        events and nothing is pending from before (no partial line, no partial UTF-8
        sequence, the leading byte order mark's check done); else None, and the caller feeds
        ``chunk`` to :meth:`feed`, which gives the same events.

        Why: on the per-chunk path of a stream, the text decode, the event objects and the
        JSON parser's own re-encoding of that text were a fifth of what decoding a chunk cost;
        a JSON parser takes the UTF-8 bytes as they came (a caller that cannot decode them —
        invalid UTF-8 — decodes them as :meth:`feed` does, with U+FFFD for each bad byte)."""
        # (``find``, not ``in``: ``bytes in bytes`` builds and drops a TypeError first, in CPython 3.11)
        if not self._clean or not chunk.endswith(b"\n\n") or chunk.find(b"\r") != -1:
            return None
        payloads: list[bytes] = []
        for block in chunk[:-2].split(b"\n\n"):
            if not block.startswith(b"data:") or block.find(b"\n") != -1:
                return None
            payloads.append(block[6:] if block.startswith(b" ", 5) else block[5:])
        return payloads

    def _whole_data_events(self, text: str) -> list[ServerSentEvent] | None:
        """The common case on the per-chunk path, in a few C-level string operations: the
        piece is whole events, each one ``data:`` line and a blank line, with nothing pending
        from before. Anything else (a split event, ``\\r``, comments, other fields, extra
        blank lines) returns None and takes the general line-by-line path, which gives the
        same events."""
        if not text.endswith("\n\n") or "\r" in text:
            return None
        events: list[ServerSentEvent] = []
        for block in text[:-2].split("\n\n"):
            if not block.startswith("data:") or "\n" in block:
                return None
            value = block[6:] if block.startswith(" ", 5) else block[5:]
            events.append(ServerSentEvent(value, None, self._id, None))
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of input: flush a final event that had no trailing blank line."""
        tail = self._utf8.decode(b"", final=True)
        events = self.feed(tail.encode()) if tail else []
        if self._buffer:
            event = self._line(self._buffer)
            self._buffer = ""
            if event is not None:
                events.append(event)
        event = self._line("")
        if event is not None:
            events.append(event)
        self._clean = False
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._has_data and self._event is None:
                return None
            event = ServerSentEvent("\n".join(self._data), self._event, self._id, self._retry)
            self._data = []
            self._event = None
            self._retry = None
            self._has_data = False
            return event
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        elif name == "error":
            # Not an SSE field, but what llama.cpp-style servers write when they give up mid-stream
            # (`error: {"error": {"message": ...}}`): an "error" event, so the decoder raises the
            # upstream's message instead of reporting a stream cut off.
            self._data.append(value)
            self._event = "error"
            self._has_data = True
        return None
