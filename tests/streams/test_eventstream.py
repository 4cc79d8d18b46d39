"""The AWS event-stream frame decoder, on recorded Bedrock bytes and hand-built frames."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._errors import MalformedResponseError, ProviderError, RateLimitError
from cloverleaf.streams.eventstream import EventMessage, EventStreamDecoder, encode_frame
from tests.wire import cassette

STREAM = "pydantic-ai/tests/models/cassettes/test_bedrock/test_bedrock_model_iter_stream.yaml"


def recorded_body() -> bytes:
    return cassette(STREAM)[0].response.body


def decode_all(body: bytes, sizes: list[int] | None = None) -> list[EventMessage]:
    dec = EventStreamDecoder(provider="bedrock")
    out: list[EventMessage] = []
    if sizes is None:
        out += dec.feed(body)
    else:
        pos = 0
        for size in sizes:
            out += dec.feed(body[pos:pos + size])
            pos += size
        out += dec.feed(body[pos:])
    out += dec.close()
    return out


def test_recorded_stream_matches_botocore_parser() -> None:
    from botocore.eventstream import EventStreamBuffer

    body = recorded_body()
    ours = decode_all(body)
    reference = EventStreamBuffer()
    reference.add_data(body)
    theirs = list(reference)
    assert len(ours) == len(theirs) == 26
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine.headers == ref.headers
        assert mine.payload == ref.payload
    assert ours[0].event_type == "messageStart"
    assert ours[0].message_type == "event"
    assert ours[0].json()["role"] == "assistant"
    assert [m.event_type for m in ours[-2:]] == ["messageStop", "metadata"]
    assert ours[-1].json()["usage"]["outputTokens"] == 91


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=700), max_size=40))
def test_any_split_gives_the_same_messages(sizes: list[int]) -> None:
    body = recorded_body()
    assert decode_all(body, sizes) == decode_all(body)


def test_byte_by_byte() -> None:
    body = recorded_body()
    assert decode_all(body, [1] * len(body)) == decode_all(body)


def test_round_trip_of_hand_built_frames() -> None:
    frames = encode_frame({":event-type": "a", ":message-type": "event"}, b'{"x":1}') + encode_frame({}, b"")
    msgs = decode_all(frames)
    assert msgs == [
        EventMessage({":event-type": "a", ":message-type": "event"}, b'{"x":1}'),
        EventMessage({}, b""),
    ]
    assert msgs[1].json() == {}
    assert msgs[1].message_type == "event"


def test_every_header_value_type() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    raw = b"".join([
        b"\x01t\x00", b"\x01f\x01", b"\x01b\x02" + struct.pack(">b", -3), b"\x01s\x03" + struct.pack(">h", 300),
        b"\x01i\x04" + struct.pack(">i", -70000), b"\x01l\x05" + struct.pack(">q", 2**40),
        b"\x01y\x06" + struct.pack(">H", 2) + b"\x00\xff", b"\x01S\x07" + struct.pack(">H", 3) + "é!".encode(),
        b"\x01T\x08" + struct.pack(">q", 1700000000000), b"\x01u\x09" + ident.bytes,
    ])
    total = 16 + len(raw) + 2
    prelude = struct.pack(">II", total, len(raw))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw + b"{}"
    frame = head + struct.pack(">I", zlib.crc32(head))
    (msg,) = decode_all(frame)
    assert msg.headers == {"t": True, "f": False, "b": -3, "s": 300, "i": -70000, "l": 2**40, "y": b"\x00\xff",
                           "S": "é!", "T": 1700000000000, "u": ident}


def test_bad_message_crc_is_malformed() -> None:
    frame = bytearray(encode_frame({":event-type": "x"}, b'{"a":1}'))
    frame[-6] ^= 0xFF  # flip a payload byte
    with pytest.raises(MalformedResponseError, match="message checksum"):
        EventStreamDecoder(provider="bedrock").feed(bytes(frame))


def test_bad_prelude_crc_is_malformed() -> None:
    frame = bytearray(encode_frame({}, b"{}"))
    frame[9] ^= 0x01
    with pytest.raises(MalformedResponseError, match="prelude checksum") as info:
        EventStreamDecoder(provider="bedrock").feed(bytes(frame))
    assert info.value.provider == "bedrock"


def test_truncated_stream_raises_at_close() -> None:
    body = recorded_body()
    dec = EventStreamDecoder()
    msgs = dec.feed(body[:-10])
    assert len(msgs) == 25  # every complete frame still comes out
    with pytest.raises(MalformedResponseError, match="ended inside a frame"):
        dec.close()


def test_bad_header_type_is_malformed() -> None:
    raw = b"\x01x\x0e"
    total = 16 + len(raw)
    prelude = struct.pack(">II", total, len(raw))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw
    with pytest.raises(MalformedResponseError, match="header"):
        EventStreamDecoder().feed(head + struct.pack(">I", zlib.crc32(head)))


def test_exception_frame_raises_the_mapped_error() -> None:
    frame = encode_frame({":message-type": "exception", ":exception-type": "throttlingException"},
                         b'{"message":"slow down"}')

    def mapper(msg: EventMessage) -> ProviderError:
        return RateLimitError(msg.json()["message"], provider="bedrock", code=str(msg.headers[":exception-type"]))

    with pytest.raises(RateLimitError, match="slow down"):
        EventStreamDecoder(on_exception=mapper).feed(frame)


def test_exception_frame_without_mapper_is_a_provider_error() -> None:
    frame = encode_frame({":message-type": "error", ":error-code": "Boom", ":error-message": "it broke"}, b"")
    with pytest.raises(ProviderError, match="it broke") as info:
        EventStreamDecoder(provider="bedrock").feed(frame)
    assert info.value.code == "Boom"
