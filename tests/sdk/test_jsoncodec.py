"""jsoncodec gives the standard library's answers, with orjson or without it.

"The same" is checked strictly: types too (``1`` is not ``1.0``, ``-0.0`` is not ``0.0``, a big
int is not a float), and dict key order."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf import _jsoncodec as jsoncodec

MODES = ["orjson", "stdlib"]


@contextmanager
def codec(mode: str) -> Iterator[None]:
    """jsoncodec as installed, or as it is without orjson."""
    if mode == "orjson":
        if jsoncodec.orjson is None:
            pytest.skip("orjson is not installed")
        yield
    else:
        with mock.patch.object(jsoncodec, "orjson", None):
            yield


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down, -0.0 told from 0.0, NaN equal to NaN and
    dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


EDGE_NUMBERS = [0, -0.0, 0.0, 1e308, -1e308, 5e-324, -5e-324, 1.7976931348623157e308, 2.2250738585072014e-308,
                0.1, 1e16, 1e-7, 123456789012345680.0, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1,
                2**64, -(2**64), 10**18, 10**19, 10**30, -(10**40)]
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates included
UTF8_TEXT = st.text()  # hypothesis leaves surrogates out by default: text UTF-8 can carry


def json_values(text: st.SearchStrategy[str], *, non_finite: bool = False) -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2**200), max_value=2**200)
               | st.floats(allow_nan=non_finite, allow_infinity=non_finite) | st.sampled_from(EDGE_NUMBERS) | text)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
                        max_leaves=25)


# -- properties -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=300, deadline=None)
@given(value=json_values(ANY_TEXT, non_finite=True), ensure_ascii=st.booleans(), indent=st.sampled_from([None, 2]))
def test_loads_text_matches_the_standard_library(mode: str, value: Any, ensure_ascii: bool, indent: int | None) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)
    with codec(mode):
        assert same(jsoncodec.loads(text), json.loads(text))


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=300, deadline=None)
@given(value=json_values(ANY_TEXT, non_finite=True), ensure_ascii=st.booleans())
def test_loads_bytes_matches_the_standard_library(mode: str, value: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii, separators=(",", ":"))
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a raw lone surrogate cannot be UTF-8: escape it instead
        data = json.dumps(value).encode("ascii")
    with codec(mode):
        assert same(jsoncodec.loads(data), json.loads(data))
        assert same(jsoncodec.loads(bytearray(data)), json.loads(bytearray(data)))


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=300, deadline=None)
@given(value=json_values(UTF8_TEXT))
def test_dumps_round_trips_through_the_standard_library(mode: str, value: Any) -> None:
    with codec(mode):
        data = jsoncodec.dumps(value)
        text = jsoncodec.dumps_text(value)
    assert isinstance(data, bytes) and isinstance(text, str)
    assert same(json.loads(data), value) and text == data.decode("utf-8")
    strings = list(_strings(value))
    for char in {c for s in strings for c in s if ord(c) >= 0x80}:
        assert char.encode("utf-8") in data  # written as UTF-8, not as a \\u escape
    if not any(" " in s for s in strings):
        assert b" " not in data  # compact: no space after , or :


@settings(max_examples=200, deadline=None)
@given(value=json_values(UTF8_TEXT))
def test_both_codecs_write_the_same_values(value: Any) -> None:
    with codec("orjson"):
        fast = jsoncodec.dumps(value)
    with codec("stdlib"):
        slow = jsoncodec.dumps(value)
    assert slow == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert same(json.loads(fast), json.loads(slow))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


# -- what orjson refuses or gets wrong, answered as json does ---------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", ['"\\ud800"', '{"a":"\\udc00x","b":["\\ud83d"]}', '"\\ud83d\\ude00"', '"\\udfff\\ud800"'])
def test_surrogate_escapes_load_as_the_standard_library_does(mode: str, text: str) -> None:
    with codec(mode):
        assert same(jsoncodec.loads(text), json.loads(text))
        assert same(jsoncodec.loads(text.encode()), json.loads(text.encode()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", '[NaN,{"x":Infinity}]', "1e400", "-1e400", "1e-400"])
def test_non_finite_numbers_load_as_the_standard_library_does(mode: str, text: str) -> None:
    with codec(mode):
        assert same(jsoncodec.loads(text), json.loads(text))
        assert same(jsoncodec.loads(text.encode()), json.loads(text.encode()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("number", [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**19 + 7,
                                    123456789012345678901234567890, -(10**100) - 3])
def test_big_integers_round_trip_exactly(mode: str, number: int) -> None:
    with codec(mode):
        for text in (str(number), f'{{"n":{number},"m":[1,{number}]}}', f'[1.5,"{number}",{number}]'):
            assert same(jsoncodec.loads(text), json.loads(text))
            assert same(jsoncodec.loads(text.encode()), json.loads(text))
        assert jsoncodec.dumps(number) == str(number).encode()
        assert jsoncodec.dumps({"n": [number]}) == b'{"n":[' + str(number).encode() + b"]}"
        assert jsoncodec.loads(jsoncodec.dumps({"n": number}))["n"] == number


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("data", ["", " ", "{", "[1,]", "{'a':1}", "nul", "1 2", "[1] x", '"\\x"', '{"a" 1}', "0x10",
                                  "01", "\ufeff{}", b"", b"\xff", b'"\xc3"', b"\xef\xbb\xbf{} x", b"[1,]",
                                  "9" * 30 + "x", b'{"n": 12345678901234567890,}'])
def test_invalid_json_raises_the_standard_librarys_error(mode: str, data: str | bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(data)
    with codec(mode), pytest.raises(ValueError) as got:
        jsoncodec.loads(data)
    assert type(got.value) is type(expected.value) and str(got.value) == str(expected.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("data", [b'"a\xed\xb3\xbf"', b'{"model":"x\xed\xa0\x80"}', b'["\xed\xb3\xbf",' + b"1" * 20 + b"]",
                                  '"a\udcff"'.encode("utf-16", "surrogatepass"),
                                  bytearray(b'{"k":"\xed\xb3\xbf"}')])
def test_bytes_that_are_not_valid_text_are_refused_where_json_lets_surrogates_through(mode: str,
                                                                                      data: bytes) -> None:
    """json.loads(bytes) decodes with surrogatepass: a UTF-8-encoded lone surrogate became a str
    that nothing could encode again (a database, a metrics page, an answer). Refused, as orjson
    refuses it, with the standard library's own decoding error."""
    with codec(mode), pytest.raises(UnicodeDecodeError):
        jsoncodec.loads(data)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_valid_text_in_any_json_encoding_still_loads(mode: str, encoding: str) -> None:
    text = '{"a":"héllo 🌍","n":12345678901234567890123}'
    data = text.encode(encoding)
    with codec(mode):
        assert same(jsoncodec.loads(data), json.loads(data))


@pytest.mark.parametrize("mode", MODES)
def test_non_string_keys_are_written_as_the_standard_library_writes_them(mode: str) -> None:
    value = {1: "int", 2.5: "float", None: "none", False: "bool", "s": {3: [4]}}
    with codec(mode):
        assert jsoncodec.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        assert jsoncodec.dumps_text(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Thing:
    pass


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [_Thing(), {"a": object()}, [{1, 2}], b"bytes", {(1, 2): "tuple key"}, 1 + 2j])
def test_unwritable_values_raise_the_standard_librarys_type_error(mode: str, value: Any) -> None:
    with pytest.raises(TypeError) as expected:
        json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    with codec(mode):
        for dump in (jsoncodec.dumps, jsoncodec.dumps_text):
            with pytest.raises(TypeError) as got:
                dump(value)
            assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("mode", MODES)
def test_lone_surrogate_in_a_str_fails_to_dump_as_the_standard_library_does(mode: str) -> None:
    with pytest.raises(UnicodeEncodeError):
        json.dumps("\ud800", separators=(",", ":"), ensure_ascii=False).encode()
    with codec(mode):
        with pytest.raises(UnicodeEncodeError):
            jsoncodec.dumps({"a": "\ud800"})
        assert jsoncodec.dumps_text({"a": "\ud800"}) == json.dumps({"a": "\ud800"}, separators=(",", ":"),
                                                                    ensure_ascii=False)


def test_non_ascii_is_written_as_utf8_compactly() -> None:
    value = {"text": "héllo — 世界 🌍", "list": [1, 2.5, None, True]}
    assert jsoncodec.dumps(value) == '{"text":"héllo — 世界 🌍","list":[1,2.5,null,true]}'.encode()
    assert jsoncodec.dumps_text(value) == '{"text":"héllo — 世界 🌍","list":[1,2.5,null,true]}'


def test_without_orjson_every_answer_is_the_standard_librarys(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = ['{"a":[1,2.5,-0.0,1e308,5e-324,null,true,"x"]}', '"\\ud800"', "NaN", "123456789012345678901234567890",
             '{"a":1,"a":2}', "[]", '"é"', "1e400"]
    installed = {case: jsoncodec.loads(case) for case in cases}
    written = {case: jsoncodec.dumps(json.loads(case)) for case in cases if case not in ("NaN", "1e400", '"\\ud800"')}
    monkeypatch.setattr(jsoncodec, "orjson", None)
    for case in cases:
        assert same(jsoncodec.loads(case), json.loads(case)) and same(jsoncodec.loads(case), installed[case])
        assert same(jsoncodec.loads(case.encode()), json.loads(case.encode()))
    for case, data in written.items():
        value = json.loads(case)
        assert jsoncodec.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        assert same(json.loads(jsoncodec.dumps(value)), json.loads(data))
    with pytest.raises(ValueError):
        jsoncodec.loads("{")
    with pytest.raises(TypeError):
        jsoncodec.dumps(object())


# -- known divergences (documented, not fixed: see the report that added them) -----------------------
@dataclasses.dataclass
class _Point:
    x: int


@pytest.mark.parametrize("value", [datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4), _Point(1)])
def test_datetimes_and_dataclasses_are_refused_as_json_refuses_them(value: Any) -> None:
    with pytest.raises(TypeError) as expected:
        json.dumps(value)
    with pytest.raises(TypeError) as got:
        jsoncodec.dumps(value)
    assert str(got.value) == str(expected.value)


@pytest.mark.skipif(jsoncodec.orjson is None, reason="the documented differences are orjson's")
@pytest.mark.parametrize(("value", "written"), [(float("nan"), b"null"), (float("inf"), b"null"),
                                                ([float("-inf")], b"[null]")])
def test_nan_and_infinity_are_written_as_null_not_as_invalid_json(value: Any, written: bytes) -> None:
    """The documented difference: json writes ``NaN``, which no JSON parser accepts."""
    assert jsoncodec.dumps(value) == written
    with pytest.raises(ValueError):
        json.loads(json.dumps(value), parse_constant=_refuse)


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("text", "literal"), [("1e400", "1e400"), ('{"a":[-1e400]}', "-1e400"), ("[NaN]", "NaN"),
                                               ('{"x":Infinity,"n":12345678901234567890123}', "Infinity"),
                                               ('{"m":1e400,"n":12345678901234567890123}', "1e400")])
def test_the_bounded_loader_refuses_non_finite_numbers_naming_them(mode: str, text: str, literal: str) -> None:
    """A client's ``1e400`` could only be sent on as ``null`` or as ``Infinity`` (not JSON)."""
    with codec(mode):
        for data in (text, text.encode()):
            with pytest.raises(jsoncodec.NonFiniteNumber) as got:
                jsoncodec.loads_bounded(data)
            assert got.value.literal == literal and isinstance(got.value, ValueError)
        assert jsoncodec.loads_bounded('{"a":1e300,"b":-2.5}') == {"a": 1e300, "b": -2.5}


@pytest.mark.parametrize("mode", MODES)
def test_non_finite_floats_are_never_written_as_infinity_or_nan(mode: str) -> None:
    """The standard library writes ``Infinity``/``NaN`` (not JSON); a 64-bit-plus integer sends
    orjson's mode there too. Both modes write ``null``."""
    value = {"a": float("inf"), "b": [float("-inf"), float("nan")], "big": 2**70, "c": (1.5,)}
    with codec(mode):
        written = jsoncodec.dumps(value)
        assert jsoncodec.dumps_text(value).encode() == written
    assert written == b'{"a":null,"b":[null,null],"big":1180591620717411303424,"c":[1.5]}'
    json.loads(written, parse_constant=_refuse)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", ['{"t":"a\\ud800b","\\udc00k":["x\\udfff"]}', '"\\ud800"'])
def test_upstream_json_has_u_fffd_for_a_lone_surrogate(mode: str, text: str) -> None:
    """A lone surrogate from a provider failed every later encoding of the text (a stream's
    chunk, a stored Response); ``loads_upstream`` reads it as U+FFFD, a real pair as itself."""
    with codec(mode):
        got = jsoncodec.loads_upstream(text.encode())
        assert jsoncodec.dumps(got)      # encodable
        assert "\ufffd" in json.dumps(got, ensure_ascii=False)
        assert jsoncodec.loads_upstream('"\\ud83d\\ude00 ok"') == "\U0001F600 ok"


@pytest.mark.parametrize("kind", [bytes, bytearray, str])
def test_the_long_number_check_finds_19_digits_in_a_row_in_any_input(kind: type) -> None:
    """The check behind exact big integers (now a ``find``: ``bytes in bytes`` built and dropped
    a TypeError per call) still sees a run of 19 digits wherever it is, and no shorter one."""
    def of(text: str) -> Any:
        return text if kind is str else kind(text.encode())

    assert jsoncodec._has_long_number(of('{"n": 1234567890123456789}'))
    assert jsoncodec._has_long_number(of("9" * 19))
    assert not jsoncodec._has_long_number(of('{"n": 123456789012345678, "m": "12345678901234567 8"}'))
    assert not jsoncodec._has_long_number(of(""))
