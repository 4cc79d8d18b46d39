"""Newline-delimited JSON (Ollama), decoded incrementally with no I/O.

Lines are split on ``\\n`` in bytes (so a split UTF-8 sequence is never decoded early);
blank lines are skipped; a line that is not JSON raises ``ValueError`` with its position,
which adapters turn into a :class:`~cloverleaf.MalformedResponseError`.
"""

from __future__ import annotations

from typing import Any

from .. import _jsoncodec as jsoncodec


class NDJSONDecoder:
    __slots__ = ("_buffer", "_line_no")

    def __init__(self) -> None:
        self._buffer = b""
        self._line_no = 0

    def feed(self, chunk: bytes) -> list[Any]:
        self._buffer += chunk
        if b"\n" not in chunk:
            return []
        *lines, self._buffer = self._buffer.split(b"\n")
        return [obj for obj in map(self._parse, lines) if obj is not None]

    def close(self) -> list[Any]:
        tail, self._buffer = self._buffer, b""
        obj = self._parse(tail)
        return [obj] if obj is not None else []

    def _parse(self, line: bytes) -> Any:
        self._line_no += 1
        line = line.strip()
        if not line:
            return None
        try:
            return jsoncodec.loads_upstream(line)
        except ValueError as exc:
            raise ValueError(f"line {self._line_no} of the stream is not JSON: {line[:200]!r}") from exc
