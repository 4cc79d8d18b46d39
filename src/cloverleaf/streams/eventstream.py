"""AWS event-stream framing (``application/vnd.amazon.eventstream``), decoded incrementally, no I/O.

Bedrock's ConverseStream (and InvokeModelWithResponseStream) answer with binary frames rather
than SSE. Each frame is self-delimiting and carries two CRC32 checksums::

    [total length u32][headers length u32][prelude CRC u32][headers][payload][message CRC u32]

The prelude CRC covers the first 8 bytes, the message CRC everything before it. Headers are
``[name length u8][name][type u8][value]`` with ten value types. Bytes may arrive split
anywhere; the decoder buffers until a whole frame is present, so any split of the input gives
the same messages. A checksum mismatch or an impossible length means the stream is corrupt and
raises :class:`~cloverleaf.MalformedResponseError` at once; leftover bytes at
:meth:`EventStreamDecoder.close` mean it was cut off mid-frame.

Frames whose ``:message-type`` is ``exception`` or ``error`` are the service reporting a failure
inside an HTTP 200 stream: they raise the ProviderError that ``on_exception`` maps them to.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _jsoncodec as jsoncodec
from .._errors import MalformedResponseError, ProviderError

_PRELUDE = struct.Struct(">III")
_PRELUDE_LEN = 12
_CRC_LEN = 4
#: The smallest frame: prelude + message CRC, no headers, no payload.
_MIN_FRAME = _PRELUDE_LEN + _CRC_LEN
#: Limits from the AWS event-stream specification.
MAX_FRAME = 16 * 1024 * 1024
MAX_HEADERS = 128 * 1024

HeaderValue = bool | int | bytes | str | uuid.UUID

# fixed-size header value types: type id -> struct format
_FIXED: dict[int, struct.Struct] = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
    8: struct.Struct(">q"),  # timestamp, milliseconds since the epoch
}
_U16 = struct.Struct(">H")


@dataclass(slots=True, frozen=True)
class EventMessage:
    """One decoded frame."""

    headers: dict[str, HeaderValue]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str | None:
        value = self.headers.get(":event-type")
        return str(value) if value is not None else None

    def json(self) -> Any:
        """The payload as JSON (``{}`` for an empty payload); ValueError when it is not JSON."""
        return jsoncodec.loads_upstream(self.payload) if self.payload else {}


class EventStreamDecoder:
    """Feed raw bytes, get :class:`EventMessage` values out; ``close()`` at end of input."""

    __slots__ = ("_buffer", "_provider", "_model", "_on_exception")

    def __init__(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        on_exception: Callable[[EventMessage], ProviderError] | None = None,
    ) -> None:
        self._buffer = bytearray()
        self._provider = provider
        self._model = model
        self._on_exception = on_exception

    def feed(self, data: bytes) -> list[EventMessage]:
        self._buffer += data
        messages: list[EventMessage] = []
        offset = 0
        buf = self._buffer
        try:
            while len(buf) - offset >= _PRELUDE_LEN:
                total, headers_len, prelude_crc = _PRELUDE.unpack_from(buf, offset)
                if zlib.crc32(buf[offset:offset + 8]) != prelude_crc:
                    raise self._corrupt("prelude checksum mismatch")
                if total < _MIN_FRAME + headers_len or total > MAX_FRAME or headers_len > MAX_HEADERS:
                    raise self._corrupt(f"impossible frame lengths (total {total}, headers {headers_len})")
                if len(buf) - offset < total:
                    break
                frame = bytes(buf[offset:offset + total])
                offset += total
                messages.append(self._message(frame, headers_len))
        finally:
            del buf[:offset]
        for msg in messages:
            if msg.message_type in ("exception", "error"):
                raise self._exception(msg)
        return messages

    def close(self) -> list[EventMessage]:
        if self._buffer:
            left = len(self._buffer)
            self._buffer.clear()
            raise self._corrupt(f"stream ended inside a frame ({left} bytes left over)")
        return []

    # -- internals ---------------------------------------------------------------------
    def _message(self, frame: bytes, headers_len: int) -> EventMessage:
        (message_crc,) = struct.unpack_from(">I", frame, len(frame) - _CRC_LEN)
        if zlib.crc32(frame[:-_CRC_LEN]) != message_crc:
            raise self._corrupt("message checksum mismatch")
        headers_end = _PRELUDE_LEN + headers_len
        headers = self._headers(frame[_PRELUDE_LEN:headers_end])
        return EventMessage(headers, frame[headers_end:-_CRC_LEN])

    def _headers(self, raw: bytes) -> dict[str, HeaderValue]:
        headers: dict[str, HeaderValue] = {}
        pos = 0
        end = len(raw)
        try:
            while pos < end:
                name_len = raw[pos]
                pos += 1
                name = raw[pos:pos + name_len].decode("utf-8")
                pos += name_len
                kind = raw[pos]
                pos += 1
                value: HeaderValue
                if kind in (0, 1):
                    value = kind == 0
                elif kind in _FIXED:
                    fmt = _FIXED[kind]
                    (value,) = fmt.unpack_from(raw, pos)
                    pos += fmt.size
                elif kind in (6, 7):
                    (length,) = _U16.unpack_from(raw, pos)
                    pos += 2
                    chunk = raw[pos:pos + length]
                    if len(chunk) != length:
                        raise ValueError("header value runs past the header block")
                    value = chunk.decode("utf-8") if kind == 7 else chunk
                    pos += length
                elif kind == 9:
                    value = uuid.UUID(bytes=raw[pos:pos + 16])
                    pos += 16
                else:
                    raise ValueError(f"unknown header value type {kind}")
                headers[name] = value
        except (IndexError, struct.error, UnicodeDecodeError, ValueError) as exc:
            raise self._corrupt(f"bad frame headers: {exc}") from None
        return headers

    def _exception(self, msg: EventMessage) -> ProviderError:
        if self._on_exception is not None:
            return self._on_exception(msg)
        name = msg.headers.get(":exception-type") or msg.headers.get(":error-code") or "error"
        text = msg.headers.get(":error-message") or msg.payload.decode("utf-8", "replace")
        return ProviderError(str(text), provider=self._provider, model=self._model, code=str(name))

    def _corrupt(self, what: str) -> MalformedResponseError:
        return MalformedResponseError(
            f"could not parse the provider's event stream: {what}", provider=self._provider, model=self._model
        )


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """Build one frame with string headers (tests and synthetic fixtures use this)."""
    raw_headers = bytearray()
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode("utf-8"), value.encode("utf-8")
        raw_headers += bytes([len(name_bytes)]) + name_bytes + b"\x07" + _U16.pack(len(value_bytes)) + value_bytes
    total = _MIN_FRAME + len(raw_headers) + len(payload)
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + bytes(raw_headers) + payload
    return head + struct.pack(">I", zlib.crc32(head))
