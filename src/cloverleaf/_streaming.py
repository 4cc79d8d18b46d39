"""What ``stream()``/``astream()`` return: an iterator of events that remembers the end.

Iterating yields :class:`StreamEvent` values (``text``, ``reasoning``, ``tool_call_delta``,
``usage``, and one final ``done``). Once consumed, ``.response`` is the assembled
:class:`ChatResponse` (complete tool calls, usage, cost, ``.parsed``). ``text_stream``
yields only text; ``partial_objects()`` yields the structured output as it grows;
``items()`` yields each validated element of a structured list as soon as it is complete.

A stream is one pass over one connection, whichever of these reads it: each picks up where the
last stopped. Closing early (``close()``, the end of a ``with`` block, or dropping the stream)
releases the connection; leaving a loop with ``break`` does not, so the stream can be resumed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ._errors import CloverleafError, ConfigError
from ._structured import ItemStream, PartialJSON, output_text, unwrap
from ._types import ChatResponse, ResponseFormat, StreamEvent


def _final_json(resp: ChatResponse) -> Any:
    """The complete structured value as the model wrote it (the JSON text the items were fed
    from, so field aliases are as the item validator expects them), or, should that text not
    parse, the validated object dumped back to JSON types under its aliases."""
    try:
        return json.loads(output_text(resp))
    except ValueError:
        pass
    parsed = resp.parsed
    if hasattr(parsed, "model_dump"):
        return parsed.model_dump(mode="json", by_alias=True)
    if isinstance(parsed, list):  # list[City]
        return [p.model_dump(mode="json", by_alias=True) if hasattr(p, "model_dump") else p for p in parsed]
    return parsed


class Stream:
    """Iterating it is iterating the one underlying event stream: iterating again (``next(iter(s))``
    then ``list(s)``, a ``for`` loop left with ``break`` then ``text_stream``) continues where the last
    one stopped. Only ``close()``, the end of a ``with`` block, or the stream itself being collected
    ends it early: a throwaway iterator must not take the connection down with it."""

    def __init__(self, events: Iterator[StreamEvent], response_format: ResponseFormat | None = None) -> None:
        self._events = events
        self._closed = False
        self.response: ChatResponse | None = None
        self.response_format = response_format

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> StreamEvent:
        ev = next(self._events)
        if ev.type == "done":
            self.response = ev.response
        return ev

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection (and any gateway reservation) now; the rest is not read."""
        self._closed = True
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
        return _finished(self.response, self._closed)


class AsyncStream:
    """As :class:`Stream`: one underlying event stream, continued by every ``async for``."""

    def __init__(self, events: AsyncIterator[StreamEvent], response_format: ResponseFormat | None = None) -> None:
        self._events = events
        self._closed = False
        self.response: ChatResponse | None = None
        self.response_format = response_format

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> StreamEvent:
        ev = await self._events.__anext__()
        if ev.type == "done":
            self.response = ev.response
        return ev

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the connection (and any gateway reservation) now; the rest is not read."""
        self._closed = True
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
        """Consume the rest and return the assembled response."""
        async for _ in self:
            pass
        return _finished(self.response, self._closed)


def _finished(response: ChatResponse | None, closed: bool) -> ChatResponse:
    """The assembled response of a stream read to its end; a stream closed (or failed) before
    its end has none, and says why rather than hand back nothing."""
    if response is not None:
        return response
    if closed:
        raise CloverleafError("this stream was closed before it finished, so it has no response: read it to the "
                              "end (or call until_done()) before close() or the end of its `with` block")
    raise CloverleafError("this stream ended without its final event (it failed part-way), so it has no response")


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
