"""What ``stream()``/``astream()`` return: an iterator of events that remembers the end.

Iterating yields :class:`StreamEvent` values (``text``, ``reasoning``, ``tool_call_delta``,
``usage``, and one final ``done``). Once consumed, ``.response`` is the assembled
:class:`ChatResponse` (complete tool calls, usage, cost, ``.parsed``). ``text_stream``
yields only text; ``partial_objects()`` yields the structured output as it grows;
``items()`` yields each validated element of a structured list as soon as it is complete. Closing
early (``with`` block or ``close()``) releases the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from ._errors import ConfigError
from ._structured import ItemStream, PartialJSON, unwrap
from ._types import ChatResponse, ResponseFormat, StreamEvent


def _final_json(resp: ChatResponse) -> Any:
    """The complete structured value: the validated object dumped back to JSON types, or
    the parsed JSON."""
    parsed = resp.parsed
    if hasattr(parsed, "model_dump"):
        return parsed.model_dump(mode="json")
    if isinstance(parsed, list):  # list[City]
        return [p.model_dump(mode="json") if hasattr(p, "model_dump") else p for p in parsed]
    return parsed


class Stream:
    def __init__(self, events: Iterator[StreamEvent], response_format: ResponseFormat | None = None) -> None:
        self._events = events
        self.response: ChatResponse | None = None
        self.response_format = response_format

    def __iter__(self) -> Iterator[StreamEvent]:
        finished = False
        try:
            for ev in self._events:
                if ev.type == "done":
                    self.response = ev.response
                    finished = True
                yield ev
            finished = True
        finally:
            if not finished:  # the consumer stopped early: release the connection (and any
                self.close()  # gateway reservation) now, not whenever the stream is collected

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    @property
    def text_stream(self) -> Iterator[str]:
        for ev in self:
            if ev.type == "text" and ev.text:
                yield ev.text

    def partial_objects(self) -> Iterator[Any]:
        """Structured output as it arrives: each yield is the object so far (a dict/list),
        only when it changed. The final, validated value is ``response.parsed``."""
        partial = PartialJSON()
        last: Any = None
        for ev in self:
            if ev.type == "text" and ev.text:
                obj = unwrap(partial.feed(ev.text), self.response_format)
                if obj is not None and obj != last:
                    last = obj
                    yield obj

    def items(self) -> Iterator[Any]:
        """Structured output that is a list (or an object holding one list): yields each
        element as soon as it is complete, validated against the item type."""
        fmt = self._response_format()
        stream = ItemStream(fmt)
        for ev in self:
            if ev.type == "text" and ev.text:
                yield from stream.feed(ev.text)
        if self.response is not None:
            yield from stream.finish(_final_json(self.response))

    def _response_format(self) -> Any:
        if self.response_format is None:
            raise ConfigError("items() needs a stream started with response_format=...")
        return self.response_format

    def until_done(self) -> ChatResponse:
        """Consume the rest and return the assembled response."""
        for _ in self:
            pass
        assert self.response is not None
        return self.response


class AsyncStream:
    def __init__(self, events: AsyncIterator[StreamEvent], response_format: ResponseFormat | None = None) -> None:
        self._events = events
        self.response: ChatResponse | None = None
        self.response_format = response_format

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        finished = False
        try:
            async for ev in self._events:
                if ev.type == "done":
                    self.response = ev.response
                    finished = True
                yield ev
            finished = True
        finally:
            if not finished:
                await self.aclose()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()

    @property
    def text_stream(self) -> _TextStream:
        """The text as it arrives: ``async for t in stream.text_stream``, as on :class:`Stream`
        (``stream.text_stream()``, the older spelling, works too)."""
        return _TextStream(self._texts())

    async def _texts(self) -> AsyncIterator[str]:
        async for ev in self:
            if ev.type == "text" and ev.text:
                yield ev.text

    async def partial_objects(self) -> AsyncIterator[Any]:
        partial = PartialJSON()
        last: Any = None
        async for ev in self:
            if ev.type == "text" and ev.text:
                obj = unwrap(partial.feed(ev.text), self.response_format)
                if obj is not None and obj != last:
                    last = obj
                    yield obj

    async def items(self) -> AsyncIterator[Any]:
        """As :meth:`Stream.items`."""
        if self.response_format is None:
            raise ConfigError("items() needs a stream started with response_format=...")
        stream = ItemStream(self.response_format)
        async for ev in self:
            if ev.type == "text" and ev.text:
                for item in stream.feed(ev.text):
                    yield item
        if self.response is not None:
            for item in stream.finish(_final_json(self.response)):
                yield item

    async def until_done(self) -> ChatResponse:
        async for _ in self:
            pass
        assert self.response is not None
        return self.response


class _TextStream:
    """An async iterator that may also be called (returning itself), so the property
    ``AsyncStream.text_stream`` keeps the twin of ``Stream.text_stream`` and the older
    ``text_stream()`` call working."""

    __slots__ = ("_texts",)

    def __init__(self, texts: AsyncIterator[str]) -> None:
        self._texts = texts

    def __call__(self) -> _TextStream:
        return self

    def __aiter__(self) -> AsyncIterator[str]:
        return self._texts
