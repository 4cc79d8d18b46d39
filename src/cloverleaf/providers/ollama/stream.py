"""Decoding Ollama's streamed replies: native NDJSON, or SSE when the OpenAI path answered.

``stream_decoder(req)`` is given no config, so it cannot know which API the request went
to; the first byte of the reply tells instead (``{`` for NDJSON, ``data:``/``:`` for SSE).
Native streams end with one object carrying ``"done": true`` plus the counts; a stream that
stops before it was cut off, and an ``{"error": ...}`` line is the server giving up mid-answer.
Ollama sends each tool call whole in one line, so a call becomes one ``tool_call_delta``.
"""

from __future__ import annotations

import json
import secrets
from codecs import BOM_UTF8
from typing import TYPE_CHECKING, Any, Protocol

from ..._types import ChatRequest, StreamEvent
from ...streams.ndjson import NDJSONDecoder
from .parse import finish_reason, reply_salt, tool_call, usage

if TYPE_CHECKING:
    from ..._errors import MalformedResponseError, ProviderError
    from ..base import Adapter, StreamDecoder


class _Host(Protocol):
    """What the decoders need of the Ollama adapter (a protocol keeps the import one way)."""

    @property
    def openai(self) -> Adapter: ...

    def malformed(self, what: str, resp: Any = None, model: str | None = None) -> MalformedResponseError: ...

    def stream_error(self, data: dict[str, Any], model: str | None) -> ProviderError: ...


class SniffingDecoder:
    """Holds bytes until the first non-blank one shows which decoder the reply needs."""

    __slots__ = ("_adapter", "_req", "_inner", "_pending")

    def __init__(self, adapter: _Host, req: ChatRequest) -> None:
        self._adapter = adapter
        self._req = req
        self._inner: StreamDecoder | None = None
        self._pending = b""

    def feed(self, data: bytes) -> list[StreamEvent]:
        if self._inner is None:
            self._pending += data
            head = self._pending.removeprefix(BOM_UTF8).lstrip()   # a proxy's byte order mark hides nothing
            if not head or BOM_UTF8.startswith(self._pending):       # or only part of that mark yet
                return []
            if head[:1] == b"{":
                self._inner = OllamaStreamDecoder(self._adapter, self._req)
            else:
                self._inner = self._adapter.openai.stream_decoder(self._req)
            data, self._pending = self._pending.removeprefix(BOM_UTF8), b""
        return self._inner.feed(data)

    def close(self) -> list[StreamEvent]:
        if self._inner is None:
            raise self._adapter.malformed("the stream ended before any data", model=self._req.model)
        return self._inner.close()


class OllamaStreamDecoder:
    """NDJSON lines of ``/api/chat`` -> StreamEvents, exactly one ``done``."""

    __slots__ = ("_adapter", "_model", "_lines", "_done", "_calls", "_salt")

    def __init__(self, adapter: _Host, req: ChatRequest) -> None:
        self._adapter = adapter
        self._model = req.model
        self._lines = NDJSONDecoder()
        self._done = False
        self._calls = 0
        #: the call ids' salt when a line has no created_at: one per stream, so ids stay unique
        self._salt = secrets.token_hex(8)

    def feed(self, data: bytes) -> list[StreamEvent]:
        try:
            objects = self._lines.feed(data)
        except ValueError as exc:
            raise self._adapter.malformed(str(exc), model=self._model) from None
        return self._events(objects)

    def close(self) -> list[StreamEvent]:
        try:
            objects = self._lines.close()
        except ValueError as exc:
            raise self._adapter.malformed(str(exc), model=self._model) from None
        events = self._events(objects)
        if not self._done:
            raise self._adapter.malformed('the stream ended without its final "done" line (cut off)',
                                          model=self._model)
        return events

    def _events(self, objects: list[Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for obj in objects:
            if not isinstance(obj, dict):
                raise self._adapter.malformed(f"stream line is not an object: {json.dumps(obj)[:200]}",
                                              model=self._model)
            if "error" in obj:
                raise self._adapter.stream_error(obj, self._model)
            if self._done:
                continue  # nothing follows "done"; ignore stray lines rather than emit twice
            message = obj.get("message") or {}
            if message.get("thinking"):
                events.append(StreamEvent("reasoning", text=message["thinking"]))
            if message.get("content"):
                events.append(StreamEvent("text", text=message["content"]))
            for call in message.get("tool_calls") or []:
                part = tool_call(call, self._calls, reply_salt(obj, self._salt))
                events.append(StreamEvent("tool_call_delta", index=self._calls, id=part.id, name=part.name,
                                          arguments=part.arguments_json))
                self._calls += 1
            if obj.get("done"):
                self._done = True
                finish, raw = finish_reason(obj, self._calls > 0)
                events.append(StreamEvent("usage", usage=usage(obj)))
                events.append(StreamEvent("done", finish_reason=finish, raw_finish_reason=raw,
                                          model=obj.get("model") or self._model))
        return events
