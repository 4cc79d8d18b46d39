"""The loop every SSE-over-JSON stream decoder shares: frame, parse once, hand over.

OpenAI Chat Completions, Anthropic Messages and Gemini all stream Server-Sent Events whose
``data`` is one JSON document. :class:`JSONEventDecoder` owns that part once: SSE framing
(:class:`~cloverleaf.streams.sse.SSEDecoder`, any chunk split), skipping blank data, the
``[DONE]`` sentinel, exactly one ``json.loads`` per event, and turning invalid JSON into
:class:`~cloverleaf.MalformedResponseError` (never a bare ``ValueError``). A provider's
decoder subclasses it and implements only what the payloads mean:

- :meth:`JSONEventDecoder._payload` — one parsed event (``event`` is the SSE event name);
- :meth:`JSONEventDecoder._sentinel` — ``data: [DONE]`` (ignored unless overridden);
- :meth:`JSONEventDecoder._end` — end of input: emit what only the end can tell, or raise
  MalformedResponseError when the stream was cut off;
- :meth:`JSONEventDecoder._malformed` — the error for a bad payload, named for the provider.
"""

from __future__ import annotations

from typing import Any

from .. import _jsoncodec as jsoncodec
from .._errors import MalformedResponseError
from .._types import StreamEvent
from .sse import SSEDecoder

_decode = jsoncodec.loads_upstream   # a lone surrogate escape becomes U+FFFD
#: orjson's parse of one event's bytes, or ``_UNDECIDED`` (then the text goes through ``_decode``,
#: as a split chunk's does: the same values, the same errors)
_decode_bytes = jsoncodec.orjson_loads
_UNDECIDED = jsoncodec.UNDECIDED


class JSONEventDecoder:
    """Base of the SSE decoders whose events carry JSON. ``feed`` any bytes; ``close`` at the end."""

    __slots__ = ("_sse",)

    def __init__(self) -> None:
        self._sse = SSEDecoder()

    def feed(self, data: bytes) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        payloads = self._sse.whole_data_payloads(data)
        if payloads is not None:   # the usual chunk: whole ``data:`` events, parsed from their bytes
            for payload in payloads:
                if payload == b"[DONE]":   # (before the parser: its refusal costs more than a chunk)
                    self._sentinel(out)
                    continue
                value = _decode_bytes(payload)
                if value is _UNDECIDED:   # not JSON as it stands: blank, bad UTF-8 or bad JSON
                    self._dispatch(None, payload.decode("utf-8", "replace"), out)
                else:
                    self._payload(None, value, out)
            return out
        for sse in self._sse.feed(data):
            self._dispatch(sse.event, sse.data, out)
        return out

    def close(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for sse in self._sse.close():
            self._dispatch(sse.event, sse.data, out)
        self._end(out)
        return out

    def _dispatch(self, event: str | None, data: str, out: list[StreamEvent]) -> None:
        if not data or data.isspace():
            return
        if data == "[DONE]":
            self._sentinel(out)
            return
        try:
            payload = _decode(data)
        except ValueError:
            if event != "error":
                raise self._malformed(f"stream data is not JSON: {data[:200]!r}", data) from None
            payload = {"error": {"message": data.strip()[:2000]}}  # an error in plain words
        self._payload(event, payload, out)

    # -- what a provider's decoder implements ---------------------------------------------
    def _payload(self, event: str | None, payload: Any, out: list[StreamEvent]) -> None:
        raise NotImplementedError

    def _sentinel(self, out: list[StreamEvent]) -> None:
        """``data: [DONE]``: only Chat Completions streams send it."""

    def _end(self, out: list[StreamEvent]) -> None:
        raise NotImplementedError

    def _malformed(self, what: str, data: str | None = None) -> MalformedResponseError:
        raise NotImplementedError
