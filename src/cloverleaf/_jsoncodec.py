"""JSON on the hot path: orjson when it is installed, the standard library otherwise, and
the same values either way (two exceptions, below).

Why: every gateway request is parsed and serialised four times (the client's body, the
upstream request, the upstream response, the answer), and the standard library's codec was
about a tenth of the server's CPU per request in ``bench/``. orjson does the same work in a
fraction of the time, but differs on a few inputs; those go to the standard library, so
callers see one behaviour:

- integers beyond 64 bits: orjson parses them as floats (silently losing digits) and refuses
  to write them. A run of 19 or more digits anywhere in the input (even inside a string: the
  check does not parse) sends it to ``json``.
- lone UTF-16 surrogates (``"\\ud800"``), ``NaN`` and ``Infinity`` literals, and text in
  UTF-16/32: orjson refuses them, ``json`` decides (callers that reject them still do).
- values orjson cannot write (non-string keys, unknown types) fall back the same way, so a
  ``TypeError`` still means what it meant. Datetimes and dataclasses, which orjson could
  write, are passed through to ``json`` too (which refuses them), for the same reason.

Two differences remain, both on values no JSON API sends: ``NaN`` and ``Infinity`` are
written as ``null`` in both modes (``json`` writes ``NaN``, which is not JSON and which clients
reject; the fallback here writes ``null`` too), and ``uuid.UUID`` and ``enum.Enum`` values are
written as their value (``json`` raises). A client's JSON holding one (``1e400``) is refused
by :func:`loads_bounded` (:class:`NonFiniteNumber`) rather than sent on changed.

One departure from ``json`` itself, in both modes: bytes that are not valid text in their
encoding raise ``UnicodeDecodeError`` (a ``ValueError``, which ``json`` raises for other bad
bytes too), as orjson does. ``json.loads(bytes)`` decodes with ``surrogatepass``, so the bytes
``ED B3 BF`` (a UTF-8-encoded lone surrogate, which is not UTF-8) became the string
``"\\udcff"``, which nothing can encode again: a client's request stored it, and the database
write, the metrics page and every answer naming it failed later, far from the request.
RFC 8259 requires JSON text to be UTF-8.

Nesting: :func:`loads_bounded` refuses a document nested deeper than ``MAX_DEPTH`` levels
(:class:`JSONTooDeep`, a ``ValueError``) before parsing it. Everything downstream of a parse —
re-serialising, ``str()``, a recursive walk — recurses once per level, so a client's JSON
must not be able to pick that depth: the server parses every request body and every
JSON-in-a-string field (tool-call arguments) through it.

Output is compact (no spaces) and UTF-8 without ``\\u`` escapes for non-ASCII, which is what
``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` gives.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - exercised by the fallback test through monkeypatching
    orjson = None  # type: ignore[assignment]

#: Every ASCII digit to "0", every other byte to " ": a run of 19 digits becomes a run of 19
#: zeros, found by a substring search (a regex scan was slower than the parse it guards).
_DIGIT_MASK = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_RUN = b"0" * 19


def _has_long_number(data: bytes | bytearray | str) -> bool:
    """True when ``data`` holds 19 or more digits in a row (an integer orjson would mangle)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    # ``find``, not ``in``: ``bytes in bytes`` first tries the needle as an integer and builds
    # (then drops) a TypeError, which costs more than the search (CPython 3.11)
    return data.translate(_DIGIT_MASK).find(_LONG_RUN) != -1


#: The deepest nesting (arrays and objects) :func:`loads_bounded` accepts. Real requests —
#: conversations, tool schemas — stay far below; 1,000 levels is where parsers and encoders
#: start to recurse out of stack.
MAX_DEPTH = 128


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than the limit (refused before it is parsed)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested more than {limit} levels deep")
        self.limit = limit


#: a JSON string literal (escapes included), removed before brackets are counted
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: ``[`` and ``{`` to +1, ``]`` and ``}`` to -1 (as signed bytes), anything else deleted
_BRACKET_STEP = bytes(1 if i in b"[{" else 255 if i in b"]}" else 0 for i in range(256))
_NOT_BRACKETS = bytes(i for i in range(256) if i not in b"[]{}")


def nesting_exceeds(data: bytes | bytearray | str, limit: int = MAX_DEPTH) -> bool:
    """True when ``data`` opens more than ``limit`` arrays/objects inside one another.

    Cheap for every input: a document with at most ``limit`` brackets in all cannot be too
    deep (two ``count`` calls); otherwise the string literals are cut out and the running
    depth is a C-level prefix sum over the remaining brackets. Works on invalid JSON too
    (it is meant to run before the parser)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b'"' in data:
        data = _STRING.sub(b"", data)
    steps = array("b")
    steps.frombytes(data.translate(None, _NOT_BRACKETS).translate(_BRACKET_STEP))
    return bool(steps) and max(accumulate(steps)) > limit


class NonFiniteNumber(ValueError):
    """A number no double can hold (``1e400``) or a ``NaN``/``Infinity`` literal in a client's
    JSON: refused by :func:`loads_bounded`, since it could only be sent on as ``null`` (orjson)
    or as ``Infinity`` (not JSON: the provider cannot parse the body), never as it was written."""

    def __init__(self, literal: str) -> None:
        super().__init__(f"the number {literal} is not finite (beyond what a 64-bit float holds, or a "
                         "NaN/Infinity literal, which JSON does not have)")
        self.literal = literal


def _refuse_constant(name: str) -> Any:
    raise NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (_INF, -_INF):
        raise NonFiniteNumber(text[:40])
    return value


_INF = float("inf")
_std_finite_decoder = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


def loads_bounded(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """:func:`loads` for a client's JSON: refusing documents nested deeper than ``max_depth``
    (:class:`JSONTooDeep`) and non-finite numbers (:class:`NonFiniteNumber`). orjson refuses
    both ``1e400`` and ``NaN``, so the check costs only on the standard library's path."""
    if nesting_exceeds(data, max_depth):
        raise JSONTooDeep(max_depth)
    if (value := _orjson_loads(data)) is not _UNDECIDED:
        return value
    return _std_finite_decoder.decode(_text(data))


def loads_upstream(data: bytes | str, max_depth: int | None = None) -> Any:
    """:func:`loads` for what a provider sent: each lone UTF-16 surrogate (``"a\\ud800b"``,
    which JSON allows) becomes U+FFFD, as :func:`utf8_replacing` writes it, so no string
    decoded from an upstream can fail later when it is encoded (a stream's chunk, a stored
    Response, a call record). One place for whole answers and streams alike. orjson refuses
    lone surrogates, so only the standard library's path, taken for a rare input, pays for
    the walk. ``max_depth``: refuse deeper nesting (:class:`JSONTooDeep`), as
    :func:`loads_bounded` does."""
    if max_depth is not None and nesting_exceeds(data, max_depth):
        raise JSONTooDeep(max_depth)
    if (value := _orjson_loads(data)) is not _UNDECIDED:
        return value
    text = _text(data)
    value = json.loads(text)
    return _without_surrogates(value) if "\\ud" in text or "\\uD" in text else value


#: what :func:`_orjson_loads` returns when the standard library must decide
_UNDECIDED = UNDECIDED = object()


def _orjson_loads(data: bytes | str) -> Any:
    """orjson's parse of ``data``, or :data:`_UNDECIDED`: without orjson, for a 19-digit or longer
    integer (which orjson would mangle), and for anything orjson refuses, so the standard
    library gives its own answer or its own error (``1e400``, ``NaN``, lone surrogates)."""
    if orjson is None or _has_long_number(data):
        return _UNDECIDED
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _UNDECIDED


#: for a caller with bytes that decides the rest itself (the SSE decoders' per-chunk path)
orjson_loads = _orjson_loads


def _text(data: bytes | str) -> str:
    """``data`` as text, decoded strictly (see the module docstring)."""
    return data if isinstance(data, str) else data.decode(json.detect_encoding(data))


def _without_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings (keys too) as U+FFFD; a walk with a
    stack, not recursion (the depth is the sender's)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if any(_SURROGATE.search(k) for k in item if isinstance(k, str)):
                pairs = list(item.items())
                item.clear()
                item.update((_SURROGATE.sub("\ufffd", k) if isinstance(k, str) else k, v) for k, v in pairs)
            for k, v in item.items():
                if isinstance(v, str):
                    item[k] = _SURROGATE.sub("\ufffd", v)
                elif isinstance(v, dict | list):
                    stack.append(v)
        elif isinstance(item, list):
            for i, v in enumerate(item):
                if isinstance(v, str):
                    item[i] = _SURROGATE.sub("\ufffd", v)
                elif isinstance(v, dict | list):
                    stack.append(v)
    return value


_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS) if orjson is not None else 0
#: ``allow_nan=False``: the standard library would write ``NaN``/``Infinity``, which is not JSON
_std_strict = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _std_encode(obj: Any) -> str:
    """The standard library's JSON, a non-finite float written as ``null`` as orjson writes it
    (never ``Infinity``, which no provider can parse)."""
    try:
        return _std_strict(obj)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        return _std_strict(_finite_or_null(obj))


def _finite_or_null(value: Any) -> Any:
    """A copy of ``value`` with each non-finite float as None (rare: a walk, after a refusal)."""
    if isinstance(value, float):
        return value if value - value == 0.0 else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    return value


def loads(data: bytes | str) -> Any:
    """``json.loads``, faster. Raises ``ValueError`` on bad input: ``json.JSONDecodeError``, or
    ``UnicodeDecodeError`` for bytes that are not valid UTF-8 (or UTF-16/32) text."""
    if (value := _orjson_loads(data)) is not _UNDECIDED:
        return value
    if not isinstance(data, str):
        # decoded strictly, where json.loads would use surrogatepass (see the module docstring)
        data = data.decode(json.detect_encoding(data))
    # json.loads itself, not JSONDecoder.decode: its errors are its own (a str starting with a
    # BOM is "Unexpected UTF-8 BOM", which decode() words differently)
    return json.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON. Raises ``TypeError``/``ValueError`` as ``json.dumps`` does."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, option=_OPTIONS)
        except TypeError:
            pass  # orjson.JSONEncodeError is a TypeError: big ints, odd keys, unknown types
    return _std_encode(obj).encode("utf-8")


def dumps_text(obj: Any) -> str:
    """As :func:`dumps`, as text."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, option=_OPTIONS).decode("utf-8")
        except TypeError:
            pass
    return _std_encode(obj)


#: A UTF-16 surrogate code point: in a Python str only ever a lone one, which UTF-8 cannot carry.
_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_replacing(text: str) -> bytes:
    """``text`` as UTF-8, each lone surrogate written as U+FFFD instead of raising.

    For answers that must go out whatever the server holds (a metrics page, an error, a
    listing): a name that UTF-8 cannot carry — one stored before requests were checked for it,
    or one a provider sent — turned each of them into a 500 for as long as it was held. Free
    when ``text`` is valid (the common case is one ``encode``)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def dumps_replacing(obj: Any) -> bytes:
    """:func:`dumps` for answers: a lone surrogate in a string is written as U+FFFD (see
    :func:`utf8_replacing`) instead of failing the answer."""
    try:
        return dumps(obj)
    except UnicodeEncodeError:
        return utf8_replacing(dumps_text(obj))
