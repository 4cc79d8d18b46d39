"""The head ``h1`` writes for an app's response: what it refuses in a header, and what that
check costs (it runs for every header of every response)."""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from cloverleaf.server.h1_cycle import Cycle

#: RFC 9110 §5.1/5.5 as the server applies them: a name is no control, space or separator; a
#: value holds no control other than tab, and no DEL (bytes from 0x80 pass: obs-text)
NAME_REFUSED = set(range(0x21)) | {0x7F} | set(b'()<>@,;:\\"/[]?={}')
VALUE_REFUSED = (set(range(0x20)) - {0x09}) | {0x7F}
#: what the app sends on every chat answer (JSONBytes, the call headers, the overhead)
USUAL = [(b"content-length", b"345"), (b"content-type", b"application/json"),
         (b"x-cloverleaf-target", b"mock/mock-model"), (b"x-request-id", b"req_0123456789abcdef"),
         (b"x-cloverleaf-overhead-ms", b"0.420")]


def _cycle() -> Cycle:
    conn = SimpleNamespace(server_state=SimpleNamespace(default_headers=[]), transport=None, closing=False,
                           write_paused=False)
    scope: dict[str, Any] = {"method": "POST", "http_version": "1.1"}
    return Cycle(conn, scope, True, False, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("byte", range(256))
def test_a_header_name_or_value_with_a_forbidden_byte_is_refused_and_any_other_is_written(byte: int) -> None:
    one = bytes([byte])
    for name, value, refused in ((b"x-a" + one + b"b", b"v", byte in NAME_REFUSED),
                                 (b"x-a", b"v" + one + b"w", byte in VALUE_REFUSED)):
        cycle = _cycle()
        if refused:
            with pytest.raises(RuntimeError, match="invalid character in a response header"):
                cycle._start(200, [(name, value)])
        else:
            cycle._start(200, [(name, value)])
            assert name + b": " + value + b"\r\n" in cycle.head
    # the second time a name is checked (it is remembered once valid) the answer is the same
    cycle = _cycle()
    if byte in NAME_REFUSED:
        with pytest.raises(RuntimeError):
            cycle._start(200, [(b"x-a" + one + b"b", b"v")])
    else:
        cycle._start(200, [(b"x-a" + one + b"b", b"v")])


def test_a_bytearray_header_is_checked_like_bytes() -> None:
    cycle = _cycle()
    cycle._start(200, [(bytearray(b"x-a"), bytearray(b"v"))])
    assert b"x-a: v\r\n" in cycle.head
    with pytest.raises(RuntimeError):
        _cycle()._start(200, [(bytearray(b"x a"), b"v")])
    with pytest.raises(RuntimeError):
        _cycle()._start(200, [(b"x-a", bytearray(b"v\r\nx-b: injected"))])


def test_the_usual_response_head_is_checked_without_a_regex_search() -> None:
    """Ten regex searches a response (a name and a value per header) were 1.5% of a request's
    instructions: names already found valid are remembered, values are checked with one
    ``bytes.translate``. Counted with a profile hook, after the first response."""
    _cycle()._start(200, USUAL)
    searches = 0

    def count(frame: object, event: str, arg: Any) -> None:
        nonlocal searches
        if event == "c_call" and getattr(arg, "__name__", "") == "search" and isinstance(arg.__self__, re.Pattern):
            searches += 1

    cycle = _cycle()
    sys.setprofile(count)
    try:
        cycle._start(200, USUAL)
    finally:
        sys.setprofile(None)
    assert searches == 0
    assert cycle.head.startswith(b"HTTP/1.1 200 OK\r\n") and cycle.remaining == 345
