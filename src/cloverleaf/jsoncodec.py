"""JSON on the hot path: orjson when it is installed, the standard library otherwise, and
the same values either way.

Why: every gateway request is parsed and serialised four times (the client's body, the
upstream request, the upstream response, the answer), and the standard library's codec was
about a tenth of the server's CPU per request in ``bench/``. orjson does the same work in a
fraction of the time, but differs on a few inputs; those go to the standard library, so
callers see one behaviour:

- integers beyond 64 bits: orjson parses them as floats (silently losing digits) and refuses
  to write them. A run of 19 or more digits anywhere in the input sends it to ``json``.
- lone UTF-16 surrogates (``"\\ud800"``), ``NaN`` and ``Infinity`` literals, and text in
  UTF-16/32: orjson refuses them, ``json`` decides (callers that reject them still do).
- values orjson cannot write (non-string keys, unknown types) fall back the same way, so a
  ``TypeError`` still means what it meant.

Output is compact (no spaces) and UTF-8 without ``\\u`` escapes for non-ASCII, which is what
``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` gives.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - exercised by the fallback test through monkeypatching
    orjson = None  # type: ignore[assignment]

_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")
_LONG_DIGITS_TEXT = re.compile(r"\d{19}")
_std_decode = json.JSONDecoder().decode
_std_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def loads(data: bytes | str) -> Any:
    """``json.loads``, faster. Raises ``ValueError`` (``json.JSONDecodeError``) on bad input."""
    if orjson is not None:
        digits = _LONG_DIGITS_BYTES if isinstance(data, bytes) else _LONG_DIGITS_TEXT
        if digits.search(data) is None:  # type: ignore[arg-type]
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # let the standard library give its own answer (or its own error)
    if isinstance(data, bytes):
        return json.loads(data)
    return _std_decode(data)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON. Raises ``TypeError``/``ValueError`` as ``json.dumps`` does."""
    if orjson is not None:
        try:
            return orjson.dumps(obj)
        except TypeError:
            pass  # orjson.JSONEncodeError is a TypeError: big ints, odd keys, unknown types
    return _std_encode(obj).encode("utf-8")


def dumps_text(obj: Any) -> str:
    """As :func:`dumps`, as text."""
    if orjson is not None:
        try:
            return orjson.dumps(obj).decode("utf-8")
        except TypeError:
            pass
    return _std_encode(obj)
